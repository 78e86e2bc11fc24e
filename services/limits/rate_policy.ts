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
  limiter: RateLimiter;
  sampler: RefusalSampler;
  audit: AuditService;
  settings: RateLimitSettings;
}

/** Creates the rate policy from the configured limits. */
export function createRatePolicy(deps: RatePolicyDeps): RatePolicy {
  const { settings, limiter } = deps;
  const rule = (text: string): RateLimit => {
    const parsed = parseRateLimit(text);
    return { ...parsed, burst: Math.max(1, Math.round(parsed.limit * settings.burst)) };
  };
  const rules = {
    login: rule(settings.login),
    authenticated: rule(settings.authenticated),
    anonymous: rule(settings.anonymous),
    uploads: rule(settings.uploads),
  };

  async function consume(checks: RateCheck[], meta: RequestMeta): Promise<RateDecision> {
    const decision = await limiter.consume(checks);
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
      const checks: RateCheck[] = [];
      const client = clientBucketKey(meta.ip);
      if (tier === "login") {
        checks.push({ id: { name: "login_ip", key: client }, rule: rules.login });
      } else if (subject.kind === "anonymous") {
        checks.push({ id: { name: "anonymous_ip", key: client }, rule: rules.anonymous });
      } else {
        // Uploads are budgeted per user (API.md), whichever of their credentials is used.
        if (tier === "uploads") {
          checks.push({ id: { name: "uploads_user", key: subject.userId }, rule: rules.uploads });
        }
        checks.push({ id: { name: subject.kind, key: subject.id }, rule: rules.authenticated });
      }
      return await consume(checks, meta);
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
