import type { Clock } from "../core/clock.ts";
import { hmacSha256, randomId, timingSafeEqual } from "../core/crypto.ts";

/**
 * OWASP "device cookies": a client that logged in to an account before holds a
 * signed token for that account. Its failed logins count against its own small
 * budget, and failures from anywhere else (an attacker guessing to lock the
 * account) never lock it out.
 */
export interface DeviceTrust {
  /** A new token for `account` (a normalized email), keeping `deviceId` when the device had one. */
  issue(account: string, deviceId: string | null): string;
  /** The device id when `token` is genuine, unexpired and issued for `account`; null otherwise. */
  verify(token: string, account: string): string | null;
  /**
   * The cookie names for `account`, the current key's first: per account and keyed,
   * so they name no email; the older keys' names still find a cookie set before a rotation.
   */
  cookieNames(account: string): string[];
  /** Seconds a token lives. */
  readonly ttlSeconds: number;
}

/** Dependencies of {@linkcode createDeviceTrust}. */
export interface DeviceTrustDeps {
  clock: Clock;
  /** Secrets the tokens are signed with: the first signs, all verify (key rotation). */
  keys: readonly Uint8Array[];
  /** @default 90 days */
  ttlSeconds?: number;
}

interface DevicePayload {
  /** Keyed digest of the account. */
  a: string;
  /** Device id. */
  d: string;
  /** Expiry, Unix seconds. */
  e: number;
}

/** Domain separation: device tokens can never pass for anything else signed with these keys. */
const LABEL = "bulwark/device-cookie/v1";
const TOKEN = /^([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{43})$/;

/** Creates the device trust service. */
export function createDeviceTrust(deps: DeviceTrustDeps): DeviceTrust {
  if (deps.keys.length === 0) throw new TypeError("Cannot create device trust: no keys");
  const ttlSeconds = deps.ttlSeconds ?? 90 * 86_400;
  const keys = deps.keys.map((k) => hmacSha256(k, LABEL));
  const signer = keys[0]!;
  const accountDigest = (key: string, account: string) =>
    hmacSha256(key, `account:${account}`).slice(0, 22);

  return {
    ttlSeconds,
    issue(account, deviceId) {
      const payload: DevicePayload = {
        a: accountDigest(signer, account),
        d: deviceId ?? randomId(),
        e: Math.floor(deps.clock.now().getTime() / 1000) + ttlSeconds,
      };
      const body = new TextEncoder().encode(JSON.stringify(payload)).toBase64({
        alphabet: "base64url",
        omitPadding: true,
      });
      return `${body}.${hmacSha256(signer, body)}`;
    },
    verify(token, account) {
      const match = TOKEN.exec(token);
      if (match === null) return null;
      const [, body, mac] = match as unknown as [string, string, string];
      // The key that signed it also made its account digest (tokens outlive a key rotation).
      const key = keys.find((k) => timingSafeEqual(hmacSha256(k, body), mac));
      if (key === undefined) return null;
      let payload: unknown;
      try {
        payload = JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(body, {
          alphabet: "base64url",
        })));
      } catch (error) {
        // A genuine MAC over a body that does not parse cannot happen; refuse it all the same.
        if (error instanceof SyntaxError || error instanceof TypeError) return null;
        throw error;
      }
      if (!isPayload(payload)) return null;
      if (payload.e <= deps.clock.now().getTime() / 1000) return null;
      return timingSafeEqual(payload.a, accountDigest(key, account)) ? payload.d : null;
    },
    cookieNames(account) {
      return keys.map((key) => `bulwark_device_${accountDigest(key, account).slice(0, 12)}`);
    },
  };
}

function isPayload(value: unknown): value is DevicePayload {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.a === "string" && typeof v.d === "string" && /^[A-Za-z0-9_-]{22}$/.test(v.d) &&
    typeof v.e === "number" && Number.isFinite(v.e);
}
