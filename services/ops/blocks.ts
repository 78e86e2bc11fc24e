/**
 * Blocks (an IP, a CIDR or a user, for a time) and the lockdown kill switch,
 * both kept in KV so every instance on the store enforces them. Requests are
 * checked against an in-memory view, refreshed from the store at most every
 * `pollMs` (default 2 s) in the background: no KV read per request. Writes made
 * by this instance apply at once; other instances see them within `pollMs`.
 *
 * Fail-safe: when a refresh fails, the last good view stays in force (blocks
 * and lockdown keep applying) and the failure is logged; the next request
 * retries. Authentication itself needs the store, so an unreachable store
 * does not open anything a block would have closed.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import type { AuditService, RequestMeta } from "../core/audit.ts";
import type { Clock } from "../core/clock.ts";
import { randomId } from "../core/crypto.ts";
import { NotFoundError, ValidationError } from "../core/errors.ts";
import { expireInUntil } from "../core/kv.ts";
import { blockKey, blocksPrefix, lockdownKey } from "../core/kv_keys.ts";
import type { Logger } from "../core/logger.ts";
import { type Cidr, formatCidr, parseCidr } from "../limits/ip_allowlist.ts";
import type { Metrics } from "./metrics.ts";
import type { LockoutService } from "../auth/lockout.ts";
import type { UserService } from "../identity/users.ts";

/** A stored block. */
export interface BlockRecord {
  id: string;
  kind: "ip" | "cidr" | "user";
  /** The address, the canonical CIDR, or the user id. */
  value: string;
  reason: string;
  created_at: string;
  expires_at: string;
  /** Who set it: `admin:<user id>`, `rule:<name>` or `cli:<operator>`. */
  created_by: string;
}

/** Input of {@linkcode BlockService.add}: exactly one of ip, cidr, userId. */
export interface NewBlock {
  ip?: string | undefined;
  cidr?: string | undefined;
  userId?: string | undefined;
  minutes: number;
  reason: string;
  createdBy: string;
}

/** The lockdown state. */
export interface LockdownState {
  on: boolean;
  reason: string;
  at: string;
  by: string;
}

/** Blocks and lockdown: stored in KV, checked from memory. */
export interface BlockService {
  /** The active block matching `ip`, if any (from the view). */
  ipBlock(ip: string): Promise<BlockRecord | null>;
  /** The active block of `userId`, if any (from the view). */
  userBlock(userId: string): Promise<BlockRecord | null>;
  /** The lockdown state (from the view). */
  lockdown(): Promise<LockdownState | null>;
  /**
   * @throws {ValidationError} without exactly one target, with a bad address or duration
   */
  add(input: NewBlock, meta?: RequestMeta): Promise<BlockRecord>;
  /** Active blocks, soonest expiry last, read from the store. */
  list(): Promise<BlockRecord[]>;
  /**
   * @throws {NotFoundError} when no such block is active
   */
  remove(id: string, by: string, meta?: RequestMeta): Promise<BlockRecord>;
  /** Sets or clears lockdown (audited; the caller raises the alert). */
  setLockdown(on: boolean, reason: string, by: string, meta?: RequestMeta): Promise<LockdownState>;
  /** Re-reads the store now. */
  refresh(): Promise<void>;
  /** Whole seconds until `block` ends (at least 1), for `Retry-After`. */
  secondsLeft(block: BlockRecord): number;
}

/** Options of {@linkcode createBlockService}. */
export interface BlockServiceOptions {
  kv: Deno.Kv;
  clock: Clock;
  audit: AuditService;
  logger: Logger;
  metrics: Metrics;
  /** A user block also locks the account's logins (423), like a lockout. */
  users: UserService;
  lockout: LockoutService;
  /** How stale the view may get. @default 2000 */
  pollMs?: number;
  /** Longest block. @default 30 days */
  maxMinutes?: number;
}

interface View {
  ips: Map<string, BlockRecord>;
  cidrs: Array<[Cidr, BlockRecord]>;
  users: Map<string, BlockRecord>;
  lockdown: LockdownState | null;
  loadedAt: number;
}

/** Creates the block service of one runtime. */
export function createBlockService(options: BlockServiceOptions): BlockService {
  const { kv, clock, audit, logger } = options;
  const pollMs = options.pollMs ?? 2000;
  const maxMinutes = options.maxMinutes ?? 30 * 24 * 60;
  let view: View | null = null;
  let loading: Promise<void> | null = null;

  options.metrics.gauge("blocks_active", () => {
    if (view === null) return [];
    const now = clock.now().toISOString();
    const count = (list: Iterable<BlockRecord>) =>
      [...list].filter((b) => b.expires_at > now).length;
    return [
      [{ kind: "ip" }, count(view.ips.values())],
      [{ kind: "cidr" }, count(view.cidrs.map(([, b]) => b))],
      [{ kind: "user" }, count(view.users.values())],
    ];
  });
  options.metrics.gauge("lockdown", () => [[{}, view?.lockdown?.on ? 1 : 0]]);

  async function load(): Promise<void> {
    const next: View = {
      ips: new Map(),
      cidrs: [],
      users: new Map(),
      lockdown: (await kv.get<LockdownState>(lockdownKey())).value,
      loadedAt: clock.now().getTime(),
    };
    const now = clock.now().toISOString();
    for await (const entry of kv.list<BlockRecord>({ prefix: blocksPrefix() })) {
      const block = entry.value;
      if (block.expires_at <= now) continue;
      index(next, block);
    }
    view = next;
  }

  function index(target: View, block: BlockRecord): void {
    if (block.kind === "ip") target.ips.set(block.value, block);
    else if (block.kind === "user") target.users.set(block.value, block);
    else {
      const cidr = parseCidr(block.value);
      if (cidr !== null) target.cidrs.push([cidr, block]);
    }
  }

  function startLoad(): Promise<void> {
    loading ??= load().catch((error: unknown) => {
      // Fail-safe (module doc): keep the last view, log, retry on the next request.
      logger.error("block view refresh failed", {
        error: error instanceof Error ? error.message : String(error),
      });
    }).finally(() => {
      loading = null;
    });
    return loading;
  }

  /** The view, loading it the first time and refreshing it in the background when stale. */
  async function current(): Promise<View | null> {
    if (view === null) await startLoad();
    else if (clock.now().getTime() - view.loadedAt >= pollMs) void startLoad();
    return view;
  }

  function live(block: BlockRecord | undefined): BlockRecord | null {
    return block !== undefined && block.expires_at > clock.now().toISOString() ? block : null;
  }

  function normalizeIp(ip: string): string {
    return ipaddr.isValid(ip) ? ipaddr.process(ip).toString() : ip;
  }

  const service: BlockService = {
    async ipBlock(ip) {
      const v = await current();
      if (v === null || (v.ips.size === 0 && v.cidrs.length === 0)) return null;
      const normal = normalizeIp(ip);
      const exact = live(v.ips.get(normal));
      if (exact !== null) return exact;
      if (v.cidrs.length === 0 || !ipaddr.isValid(normal)) return null;
      const addr = ipaddr.parse(normal);
      for (const [cidr, block] of v.cidrs) {
        if (addr.kind() === cidr[0].kind() && addr.match(cidr) && live(block) !== null) {
          return block;
        }
      }
      return null;
    },

    async userBlock(userId) {
      const v = await current();
      return v === null || v.users.size === 0 ? null : live(v.users.get(userId));
    },

    async lockdown() {
      return (await current())?.lockdown ?? null;
    },

    async add(input, meta) {
      const targets = [input.ip, input.cidr, input.userId].filter((t) => t !== undefined);
      if (targets.length !== 1) {
        throw new ValidationError("Give exactly one of ip, cidr or user_id", {
          errors: [{ path: "ip", message: "exactly one of ip, cidr, user_id is required" }],
        });
      }
      if (!Number.isInteger(input.minutes) || input.minutes < 1 || input.minutes > maxMinutes) {
        throw new ValidationError("Invalid block duration", {
          errors: [{ path: "minutes", message: `must be an integer from 1 to ${maxMinutes}` }],
        });
      }
      let kind: BlockRecord["kind"];
      let value: string;
      if (input.userId !== undefined) {
        const user = await options.users.getUser(input.userId);
        if (user === null) {
          throw new ValidationError("Unknown user", {
            errors: [{ path: "user_id", message: "no such user" }],
          });
        }
        await options.lockout.lockFor(user.email, input.minutes * 60_000);
        kind = "user";
        value = input.userId;
      } else {
        const text = (input.ip ?? input.cidr)!;
        const cidr = parseCidr(text);
        const single = input.ip !== undefined;
        if (cidr === null || (single && text.includes("/"))) {
          throw new ValidationError("Invalid address", {
            errors: [{ path: single ? "ip" : "cidr", message: "not a valid IP address or CIDR" }],
          });
        }
        const full = cidr[1] === (cidr[0].kind() === "ipv4" ? 32 : 128);
        kind = full ? "ip" : "cidr";
        value = full ? cidr[0].toString() : formatCidr(cidr);
      }
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + input.minutes * 60_000);
      const block: BlockRecord = {
        id: randomId(),
        kind,
        value,
        reason: input.reason,
        created_at: now.toISOString(),
        expires_at: expiresAt.toISOString(),
        created_by: input.createdBy,
      };
      await kv.set(blockKey(block.id), block, { expireIn: expireInUntil(expiresAt, now) });
      if (view !== null) index(view, block);
      await audit.record({
        type: "ops.block_added",
        outcome: "success",
        userId: kind === "user" ? value : undefined,
        meta,
        details: {
          block_id: block.id,
          kind,
          value,
          minutes: input.minutes,
          reason: input.reason,
          by: input.createdBy,
        },
      });
      return block;
    },

    async list() {
      const now = clock.now().toISOString();
      const out: BlockRecord[] = [];
      for await (const entry of kv.list<BlockRecord>({ prefix: blocksPrefix() })) {
        if (entry.value.expires_at > now) out.push(entry.value);
      }
      return out.sort((a, b) => b.expires_at.localeCompare(a.expires_at));
    },

    async remove(id, by, meta) {
      const entry = await kv.get<BlockRecord>(blockKey(id));
      const block = entry.value;
      if (block === null || block.expires_at <= clock.now().toISOString()) {
        throw new NotFoundError("No such active block");
      }
      await kv.delete(blockKey(id));
      if (block.kind === "user") {
        // Another live block of the same user keeps the login lock; a brute-force lockout
        // count is never touched here (the login lock is a key of its own).
        const others = (await service.list()).filter((b) =>
          b.kind === "user" && b.value === block.value && b.id !== id
        );
        const user = await options.users.getUser(block.value);
        if (user !== null && others.length === 0) await options.lockout.unblock(user.email);
      }
      if (view !== null) {
        if (block.kind === "ip" && view.ips.get(block.value)?.id === id) {
          view.ips.delete(block.value);
        }
        if (block.kind === "user" && view.users.get(block.value)?.id === id) {
          view.users.delete(block.value);
        }
        view.cidrs = view.cidrs.filter(([, b]) => b.id !== id);
      }
      await audit.record({
        type: "ops.block_removed",
        outcome: "success",
        userId: block.kind === "user" ? block.value : undefined,
        meta,
        details: { block_id: id, kind: block.kind, value: block.value, by },
      });
      return block;
    },

    async setLockdown(on, reason, by, meta) {
      const state: LockdownState = { on, reason, at: clock.now().toISOString(), by };
      await kv.set(lockdownKey(), state);
      if (view !== null) view.lockdown = state;
      await audit.record({
        type: on ? "ops.lockdown_on" : "ops.lockdown_off",
        outcome: "success",
        meta,
        details: { reason, by },
      });
      return state;
    },

    async refresh() {
      await startLoad();
    },

    secondsLeft(block) {
      return Math.max(1, Math.ceil((Date.parse(block.expires_at) - clock.now().getTime()) / 1000));
    },
  };
  return service;
}
