import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { RateLimitSettings } from "../config/config.ts";
import { RateLimitedError } from "../core/errors.ts";
import { ipPrefix } from "./client_ip.ts";
import {
  parseRateLimit,
  type RateCheck,
  type RateDecision,
  type RateLimit,
  type RateLimiter,
} from "./rate_limiter.ts";
import type { RefusalSampler } from "./refusal_sampler.ts";
import type { LocalRateLimiter } from "./local_rate_limiter.ts";

/** Who is asking, as the limiter sees it. */
export type RateSubject =
  | { kind: "user"; id: string; userId: string }
  | { kind: "api_key"; id: string; userId: string }
  | { kind: "anonymous" };

/**
 * The client part of a bucket key: the address for IPv4, the /64 for IPv6 —
 * one host usually holds a whole /64 and could otherwise rotate through it.
 */
export function clientBucketKey(ip: string): string {
  return ip.includes(":") && !ip.startsWith("::ffff:") ? ipPrefix(ip) : ip;
}

/** What a per-account login-class bucket is spent on. */
export type AccountPurpose = "login" | "login_device" | "register" | "forgot" | "oauth2_client";

/** Which budget a request draws on. */
export type RateTier = "login" | "uploads" | "general";

/** The API.md rate-limit table applied to requests. */
export interface RatePolicy {
  readonly enabled: boolean;
  /**
   * Takes one token from the buckets a request draws on.
   *
   * @throws {RateLimitedError} with the bucket's state when refused
   */
  checkRequest(
    tier: RateTier,
    subject: RateSubject,
    meta: RequestMeta,
  ): Promise<RateDecision | null>;
  /**
   * Takes one token from a per-account bucket of the login class. Each purpose has
   * its own bucket, so registering or asking for resets with someone's address
   * cannot spend their login budget; a trusted device's logins are keyed by the
   * device, so nobody else can spend them either.
   *
   * @throws {RateLimitedError} when refused
   */
  checkAccount(purpose: AccountPurpose, account: string, meta: RequestMeta): Promise<void>;
}

/** Dependencies of {@linkcode createRatePolicy}. */
export interface RatePolicyDeps {
  /** Exact shared buckets: the login class (per IP, per account) and uploads. */
  limiter: RateLimiter;
  /** Reconciled in-memory buckets: the authenticated and anonymous classes. */
  local: LocalRateLimiter;
  sampler: RefusalSampler;
  audit: AuditService;
  settings: RateLimitSettings;
}

/** The configured rules of each class (`RATE_LIMIT_*`, burst applied). */
export function rateRules(
  settings: RateLimitSettings,
): Record<"login" | "authenticated" | "anonymous" | "uploads", RateLimit> {
  const rule = (text: string): RateLimit => {
    const parsed = parseRateLimit(text);
    return { ...parsed, burst: Math.max(1, Math.round(parsed.limit * settings.burst)) };
  };
  return {
    login: rule(settings.login),
    authenticated: rule(settings.authenticated),
    anonymous: rule(settings.anonymous),
    uploads: rule(settings.uploads),
  };
}

/**
 * Creates the rate policy from the configured limits. The login class and uploads are
 * decided exactly on the shared store; the authenticated and anonymous classes by the
 * reconciled local limiter (no store write per request; bound in local_rate_limiter.ts).
 */
export function createRatePolicy(deps: RatePolicyDeps): RatePolicy {
  const { settings, limiter, local } = deps;
  const rules = rateRules(settings);

  async function consume(checks: RateCheck[], meta: RequestMeta): Promise<RateDecision> {
    return await admit(await limiter.consume(checks), meta);
  }

  /**
   * The local bucket first (memory only), then the exact one: a local refusal spends no
   * exact token, an exact refusal gives the local token back (unless a reconcile already
   * published it: then it stays spent, which only errs towards refusing).
   */
  async function consumeBoth(
    localCheck: RateCheck,
    exactCheck: RateCheck,
    meta: RequestMeta,
  ): Promise<RateDecision> {
    const taken = await local.take(localCheck);
    if (!taken.decision.allowed) return await admit(taken.decision, meta);
    let exact: RateDecision;
    try {
      exact = await limiter.consume([exactCheck]);
    } catch (error) {
      taken.undo();
      throw error;
    }
    if (!exact.allowed) taken.undo();
    return await admit(exact.allowed ? mostRestrictive(exact, taken.decision) : exact, meta);
  }

  /** Returns an allowed decision; audits (sampled) and throws a refused one. */
  async function admit(decision: RateDecision, meta: RequestMeta): Promise<RateDecision> {
    if (decision.allowed) return decision;
    if (await deps.sampler.shouldAudit(decision.bucket, decision.rule)) {
      // Sampled: one event per bucket per window, so a flood cannot flood the audit store.
      await deps.audit.record({
        type: "rate_limit.exceeded",
        outcome: "failure",
        meta,
        details: {
          bucket: decision.bucket.name,
          limit: decision.limit,
          contended: decision.contended,
        },
      });
    }
    throw new RateLimitedError("Too many requests; slow down", {
      limit: decision.limit,
      remaining: decision.remaining,
      resetAt: decision.resetAt,
      retryAfter: decision.retryAfterSeconds,
    });
  }

  return {
    enabled: settings.enabled,
    async checkRequest(tier, subject, meta) {
      if (!settings.enabled) return null;
      const client = clientBucketKey(meta.ip);
      if (tier === "login") {
        return await consume([{ id: { name: "login_ip", key: client }, rule: rules.login }], meta);
      }
      if (subject.kind === "anonymous") {
        const check = { id: { name: "anonymous_ip", key: client }, rule: rules.anonymous };
        return await admit((await local.take(check)).decision, meta);
      }
      const own = { id: { name: subject.kind, key: subject.id }, rule: rules.authenticated };
      if (tier !== "uploads") return await admit((await local.take(own)).decision, meta);
      // Uploads are budgeted per user (API.md), whichever of their credentials is used.
      const uploads = { id: { name: "uploads_user", key: subject.userId }, rule: rules.uploads };
      return await consumeBoth(own, uploads, meta);
    },
    async checkAccount(purpose, account, meta) {
      if (!settings.enabled) return;
      await consume(
        [{ id: { name: `${purpose}_account`, key: account }, rule: rules.login }],
        meta,
      );
    },
  };
}

/**
 * Of two allowed decisions, the one to describe: fewer whole tokens left, then the later
 * reset, then the first (as the exact limiter picks among its buckets).
 */
function mostRestrictive(a: RateDecision, b: RateDecision): RateDecision {
  if (a.remaining !== b.remaining) return a.remaining < b.remaining ? a : b;
  return b.resetAt.getTime() > a.resetAt.getTime() ? b : a;
}
