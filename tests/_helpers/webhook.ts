/** A real HTTP alert receiver that verifies each delivery's signature as a client would. */
import { SIGNATURE_HEADER } from "../../services/ops/alerts.ts";
import { hmacSha256, timingSafeEqual } from "../../services/core/crypto.ts";

/** One delivery as the receiver saw it. */
export interface Received {
  body: Record<string, unknown>;
  /** The HMAC over `t.body` matched under the shared secret. */
  verified: boolean;
  /** Seconds between the signed timestamp and arrival (replay window check). */
  ageSeconds: number;
}

/** A running receiver; `await using` stops it. */
export interface Receiver extends AsyncDisposable {
  readonly url: string;
  readonly received: Received[];
  calls(): number;
}

/** Starts a receiver on a free loopback port; the first `failFirst` calls answer 503. */
export function startReceiver(secret: string, failFirst = 0): Receiver {
  const received: Received[] = [];
  let calls = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    calls++;
    const text = await req.text();
    const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(req.headers.get(SIGNATURE_HEADER) ?? "");
    let verified = false;
    let ageSeconds = Infinity;
    if (match !== null) {
      const mac = hmacSha256(new TextEncoder().encode(secret), `${match[1]}.${text}`);
      const hex = Uint8Array.fromBase64(mac, { alphabet: "base64url" }).toHex();
      verified = timingSafeEqual(hex, match[2]!);
      ageSeconds = Math.abs(Date.now() / 1000 - Number(match[1]));
    }
    if (calls <= failFirst) return new Response("down", { status: 503 });
    received.push({ body: JSON.parse(text), verified, ageSeconds });
    return new Response(null, { status: 204 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    received,
    calls: () => calls,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}
