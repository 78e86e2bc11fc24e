import fc from "fast-check";
import {
  decodeProtectedHeader,
  errors as joseErrors,
  generateKeyPair,
  type JWTHeaderParameters,
  type JWTPayload,
  SignJWT,
} from "jose";
import { assert, assertEquals, assertMatch, assertRejects } from "../../_helpers/assert.ts";
import type { SecretKey } from "../../../services/config/config.ts";
import { TokenExpiredError, TokenInvalidError } from "../../../services/core/errors.ts";
import { ROLES } from "../../../services/auth/permissions.ts";
import { createTokenService, type TokenService } from "../../../services/auth/tokens.ts";
import { b64url, decodeJwt, withHeader, withPayload } from "../../_helpers/jwt.ts";
import { FakeClock } from "../../_helpers/world.ts";

const ISSUER = "https://auth.bulwark.test";
const ACCESS_TTL = 1800;

function key(kid: string, secret: string): SecretKey {
  return { kid, secret: new TextEncoder().encode(secret) };
}

const ACCESS_OLD = key("access-2025", "access-old-secret-0123456789abcdef0123456789");
const ACCESS = key("access-2026", "access-new-secret-0123456789abcdef0123456789");
const REFRESH_OLD = key("refresh-2025", "refresh-old-secret-0123456789abcdef012345678");
const REFRESH = key("refresh-2026", "refresh-new-secret-0123456789abcdef012345678");

const INPUT = {
  userId: "user_0123456789abcdef",
  sessionId: "sess_0123456789abcdef",
  role: "user",
  scope: ["profile:read", "notes:write"],
} as const;

interface World {
  clock: FakeClock;
  tokens: TokenService;
}

function world(
  options: {
    clock?: FakeClock;
    accessKeys?: readonly SecretKey[];
    refreshKeys?: readonly SecretKey[];
    verifiedCacheSize?: number;
  } = {},
): World {
  const clock = options.clock ?? new FakeClock();
  const tokens = createTokenService({
    accessKeys: options.accessKeys ?? [ACCESS],
    refreshKeys: options.refreshKeys ?? [REFRESH],
    issuer: ISSUER,
    accessTtlSeconds: ACCESS_TTL,
    clock,
    ...(options.verifiedCacheSize === undefined
      ? {}
      : { verifiedCacheSize: options.verifiedCacheSize }),
  });
  return { clock, tokens };
}

function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/** A complete, valid access payload at the clock's time, with `overrides` applied. */
function accessPayload(clock: FakeClock, overrides: Record<string, unknown> = {}): JWTPayload {
  const iat = seconds(clock.now());
  return {
    iss: ISSUER,
    sub: INPUT.userId,
    sid: INPUT.sessionId,
    jti: "jti_0123456789abcdef",
    typ: "access",
    role: "user",
    scope: "profile:read",
    iat,
    exp: iat + ACCESS_TTL,
    ...overrides,
  };
}

function refreshPayload(clock: FakeClock, overrides: Record<string, unknown> = {}): JWTPayload {
  const { role: _role, scope: _scope, ...rest } = accessPayload(clock, { typ: "refresh" });
  return { ...rest, exp: seconds(clock.now()) + 7 * 86400, ...overrides };
}

/** Signs `payload` with jose, HS256 and `signer`'s kid unless `header` says otherwise. */
function sign(
  payload: JWTPayload,
  signer: SecretKey,
  header: Partial<JWTHeaderParameters> = {},
): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: signer.kid, ...header })
    .sign(signer.secret);
}

/** `header.payload.` with any JSON, and an HMAC-SHA256 signature when `secret` is given. */
async function handBuilt(
  header: unknown,
  payload: unknown,
  secret?: Uint8Array,
): Promise<string> {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  if (secret === undefined) return `${input}.`;
  const hmac = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", hmac, new TextEncoder().encode(input)),
  );
  return `${input}.${b64url(mac)}`;
}

async function refusedAccess(tokens: TokenService, token: string): Promise<TokenInvalidError> {
  const error = await assertRejects(() => tokens.verifyAccess(token), TokenInvalidError);
  assertEquals(error.code, "token_invalid");
  return error;
}

async function refusedRefresh(tokens: TokenService, token: string): Promise<TokenInvalidError> {
  const error = await assertRejects(() => tokens.verifyRefresh(token), TokenInvalidError);
  assertEquals(error.code, "token_invalid");
  return error;
}

Deno.test("verifyAccess() returns the claims of a token from signAccess()", async () => {
  const { clock, tokens } = world();
  const signed = await tokens.signAccess(INPUT, clock.now());
  const { sub, sid, jti, role, scope, iat: issued, exp } = await tokens.verifyAccess(signed.token);
  const iat = seconds(clock.now());
  assertEquals({ sub, sid, jti, role, scope, iat: issued, exp }, {
    sub: INPUT.userId,
    sid: INPUT.sessionId,
    jti: signed.jti,
    role: "user",
    scope: ["profile:read", "notes:write"],
    iat,
    exp: iat + ACCESS_TTL,
  });
  assertEquals(signed.expiresAt, new Date(clock.now().getTime() + ACCESS_TTL * 1000));
  assertMatch(signed.jti, /^[A-Za-z0-9_-]{22}$/);
  assertEquals(decodeProtectedHeader(signed.token), { alg: "HS256", kid: ACCESS.kid, typ: "JWT" });
  const payload = decodeJwt(signed.token).payload;
  assertEquals(payload.iss, ISSUER);
  assertEquals(payload.typ, "access");
  assertEquals(payload.scope, "profile:read notes:write");
});

Deno.test("verifyRefresh() returns the claims of a token from signRefresh()", async () => {
  const { clock, tokens } = world();
  const expiresAt = new Date(clock.now().getTime() + 7 * 86400 * 1000);
  const signed = await tokens.signRefresh(
    { userId: INPUT.userId, sessionId: INPUT.sessionId, expiresAt },
    clock.now(),
  );
  assertEquals(await tokens.verifyRefresh(signed.token), {
    sub: INPUT.userId,
    sid: INPUT.sessionId,
    jti: signed.jti,
    iat: seconds(clock.now()),
    exp: seconds(expiresAt),
  });
  assertEquals(decodeProtectedHeader(signed.token).kid, REFRESH.kid);
  assertEquals(decodeJwt(signed.token).payload.typ, "refresh");
});

Deno.test("every signed token gets a fresh jti", async () => {
  const { clock, tokens } = world();
  const jtis = new Set<string>();
  for (let i = 0; i < 20; i++) jtis.add((await tokens.signAccess(INPUT, clock.now())).jti);
  assertEquals(jtis.size, 20);
});

Deno.test("a hand-built HS256 token with the right key verifies (control for the refusals below)", async () => {
  const { clock, tokens } = world();
  const token = await handBuilt(
    { alg: "HS256", typ: "JWT", kid: ACCESS.kid },
    accessPayload(clock),
    ACCESS.secret,
  );
  assertEquals((await tokens.verifyAccess(token)).sub, INPUT.userId);
});

Deno.test("verifyAccess() refuses alg none", async (t) => {
  const { clock, tokens } = world();
  for (const alg of ["none", "None", "NONE", "nOnE"]) {
    await t.step(alg, async () => {
      const token = await handBuilt({ alg, typ: "JWT", kid: ACCESS.kid }, accessPayload(clock));
      const error = await refusedAccess(tokens, token);
      assert(error.cause instanceof joseErrors.JOSEError, String(error.cause));
    });
  }
  await t.step("none with a signature attached", async () => {
    const signed = await handBuilt(
      { alg: "HS256", kid: ACCESS.kid },
      accessPayload(clock),
      ACCESS.secret,
    );
    const token = withHeader(signed, { alg: "none", kid: ACCESS.kid });
    const error = await refusedAccess(tokens, token);
    assert(error.cause instanceof joseErrors.JOSEAlgNotAllowed, String(error.cause));
  });
  await t.step("verifyRefresh() too", async () => {
    const token = await handBuilt(
      { alg: "none", typ: "JWT", kid: REFRESH.kid },
      refreshPayload(clock),
    );
    await refusedRefresh(tokens, token);
  });
});

Deno.test("verifyAccess() refuses an alg other than HS256", async (t) => {
  const { clock, tokens } = world();
  await t.step("HS512 signed with the access secret and kid", async () => {
    const token = await sign(accessPayload(clock), ACCESS, { alg: "HS512" });
    const error = await refusedAccess(tokens, token);
    assert(error.cause instanceof joseErrors.JOSEAlgNotAllowed, String(error.cause));
  });
  await t.step("HS384 signed with the access secret and kid", async () => {
    const token = await sign(accessPayload(clock), ACCESS, { alg: "HS384" });
    const error = await refusedAccess(tokens, token);
    assert(error.cause instanceof joseErrors.JOSEAlgNotAllowed, String(error.cause));
  });
  await t.step("RS256 signed with a real RSA key under the access kid", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    const token = await new SignJWT(accessPayload(clock))
      .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: ACCESS.kid })
      .sign(privateKey);
    const error = await refusedAccess(tokens, token);
    assert(error.cause instanceof joseErrors.JOSEAlgNotAllowed, String(error.cause));
  });
  await t.step("RS256 header over an HMAC-SHA256 signature (key confusion)", async () => {
    const token = await handBuilt(
      { alg: "RS256", typ: "JWT", kid: ACCESS.kid },
      accessPayload(clock),
      ACCESS.secret,
    );
    const error = await refusedAccess(tokens, token);
    assert(error.cause instanceof joseErrors.JOSEAlgNotAllowed, String(error.cause));
  });
  await t.step("missing alg", async () => {
    const token = await handBuilt(
      { typ: "JWT", kid: ACCESS.kid },
      accessPayload(clock),
      ACCESS.secret,
    );
    await refusedAccess(tokens, token);
  });
});

Deno.test("verifyAccess() refuses a tampered payload", async (t) => {
  const { clock, tokens } = world();
  const { token } = await tokens.signAccess(INPUT, clock.now());
  await t.step("role flipped to admin, signature kept", async () => {
    const tampered = withPayload(token, { ...decodeJwt(token).payload, role: "admin" });
    const error = await refusedAccess(tokens, tampered);
    assert(error.cause instanceof joseErrors.JWSSignatureVerificationFailed, String(error.cause));
  });
  await t.step("scope widened, signature kept", async () => {
    const tampered = withPayload(token, {
      ...decodeJwt(token).payload,
      scope: "profile:read users:manage audit:read",
    });
    const error = await refusedAccess(tokens, tampered);
    assert(error.cause instanceof joseErrors.JWSSignatureVerificationFailed, String(error.cause));
  });
  await t.step("exp extended, signature kept", async () => {
    const payload = decodeJwt(token).payload;
    const tampered = withPayload(token, { ...payload, exp: Number(payload.exp) + 86400 });
    await refusedAccess(tokens, tampered);
  });
  await t.step("signature truncated or removed", async () => {
    await refusedAccess(tokens, token.slice(0, -1));
    await refusedAccess(tokens, token.slice(0, token.lastIndexOf(".") + 1));
  });
});

Deno.test("verifyAccess() refuses a token signed with a wrong secret", async () => {
  const { clock, tokens } = world();
  const forged = key(ACCESS.kid, "attacker-guess-0123456789abcdef0123456789abc");
  const token = await sign(accessPayload(clock), forged);
  const error = await refusedAccess(tokens, token);
  assert(error.cause instanceof joseErrors.JWSSignatureVerificationFailed, String(error.cause));
});

Deno.test("verifyAccess() and verifyRefresh() refuse the other kind of token", async (t) => {
  const { clock, tokens } = world();
  const access = await tokens.signAccess(INPUT, clock.now());
  const refresh = await tokens.signRefresh(
    {
      userId: INPUT.userId,
      sessionId: INPUT.sessionId,
      expiresAt: new Date(clock.now().getTime() + 3600_000),
    },
    clock.now(),
  );
  await t.step(
    "a refresh token presented to verifyAccess() (kid not in the access ring)",
    async () => {
      const error = await refusedAccess(tokens, refresh.token);
      assertMatch(error.message, /key is unknown/);
    },
  );
  await t.step(
    "an access token presented to verifyRefresh() (kid not in the refresh ring)",
    async () => {
      const error = await refusedRefresh(tokens, access.token);
      assertMatch(error.message, /key is unknown/);
    },
  );
  await t.step("typ refresh signed with the access key is refused by verifyAccess()", async () => {
    const token = await sign(accessPayload(clock, { typ: "refresh" }), ACCESS);
    const error = await refusedAccess(tokens, token);
    assertMatch(error.message, /not an access token/);
  });
  await t.step("typ access signed with the refresh key is refused by verifyRefresh()", async () => {
    const token = await sign(refreshPayload(clock, { typ: "access" }), REFRESH);
    const error = await refusedRefresh(tokens, token);
    assertMatch(error.message, /not an refresh token|not a refresh token/);
  });
  await t.step("missing or odd typ is refused", async () => {
    const { typ: _typ, ...untyped } = accessPayload(clock);
    for (
      const payload of [untyped, { ...untyped, typ: "ACCESS" }, { ...untyped, typ: ["access"] }]
    ) {
      await refusedAccess(tokens, await sign(payload, ACCESS));
    }
  });
});

Deno.test("verifyAccess() refuses a typ access token signed with the refresh secret", async (t) => {
  const { clock, tokens } = world();
  await t.step("under the access kid: the signature fails", async () => {
    const token = await sign(accessPayload(clock), REFRESH, { kid: ACCESS.kid });
    const error = await refusedAccess(tokens, token);
    assert(error.cause instanceof joseErrors.JWSSignatureVerificationFailed, String(error.cause));
  });
  await t.step("under the refresh kid: the kid is unknown to the access ring", async () => {
    const token = await sign(accessPayload(clock), REFRESH);
    const error = await refusedAccess(tokens, token);
    assertMatch(error.message, /key is unknown/);
  });
});

Deno.test("verifyAccess() refuses an unknown or missing kid", async (t) => {
  const { clock, tokens } = world();
  await t.step("unknown kid, right secret", async () => {
    const token = await sign(accessPayload(clock), ACCESS, { kid: "access-1999" });
    assertMatch((await refusedAccess(tokens, token)).message, /key is unknown/);
  });
  await t.step("missing kid, right secret", async () => {
    const token = await new SignJWT(accessPayload(clock))
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .sign(ACCESS.secret);
    assertMatch((await refusedAccess(tokens, token)).message, /key is unknown/);
  });
  await t.step("non-string kids", async () => {
    for (const kid of [null, 0, true, [ACCESS.kid], { kid: ACCESS.kid }]) {
      const token = await handBuilt({ alg: "HS256", kid }, accessPayload(clock), ACCESS.secret);
      await refusedAccess(tokens, token);
    }
  });
  await t.step("prototype-ish kids", async () => {
    for (const kid of ["__proto__", "constructor", "toString", ""]) {
      const token = await sign(accessPayload(clock), ACCESS, { kid });
      await refusedAccess(tokens, token);
    }
  });
});

Deno.test("verifyAccess() refuses a wrong or missing issuer", async (t) => {
  const { clock, tokens } = world();
  for (const iss of ["https://evil.example", `${ISSUER}/`, ISSUER.toUpperCase(), "", [ISSUER]]) {
    await t.step(JSON.stringify(iss), async () => {
      const token = await sign(accessPayload(clock, { iss }), ACCESS);
      const error = await refusedAccess(tokens, token);
      assert(error.cause instanceof joseErrors.JWTClaimValidationFailed, String(error.cause));
    });
  }
  await t.step("missing", async () => {
    const { iss: _iss, ...payload } = accessPayload(clock);
    await refusedAccess(tokens, await sign(payload, ACCESS));
  });
});

Deno.test("verifyAccess() refuses a token missing a required claim", async (t) => {
  const { clock, tokens } = world();
  for (const claim of ["sub", "jti", "iat", "exp", "sid", "role", "scope"]) {
    await t.step(claim, async () => {
      const payload: Record<string, unknown> = { ...accessPayload(clock) };
      delete payload[claim];
      await refusedAccess(tokens, await sign(payload, ACCESS));
    });
  }
});

Deno.test("verifyAccess() refuses malformed sid, jti, role or scope claims", async (t) => {
  const { clock, tokens } = world();
  const cases: Record<string, Record<string, unknown>> = {
    "sid too short": { sid: "abc" },
    "sid too long": { sid: "s".repeat(65) },
    "sid with a slash": { sid: "sess/0123456789" },
    "sid with a newline": { sid: "sess_0123456789\n" },
    "sid as a number": { sid: 1234567890 },
    "sid as null": { sid: null },
    "sid as an array": { sid: [INPUT.sessionId] },
    "jti too short": { jti: "j" },
    "jti too long": { jti: "j".repeat(65) },
    "jti with dots": { jti: "../../etc/passwd" },
    "jti with a space": { jti: "jti 0123456789" },
    "role unknown": { role: "superuser" },
    "role as prototype key": { role: "__proto__" },
    "role as an array": { role: ["admin"] },
    "scope as an array": { scope: ["profile:read"] },
    "scope as null": { scope: null },
  };
  for (const [name, overrides] of Object.entries(cases)) {
    await t.step(name, async () => {
      const error = await refusedAccess(
        tokens,
        await sign(accessPayload(clock, overrides), ACCESS),
      );
      assertEquals(error.code, "token_invalid");
    });
  }
  await t.step("verifyRefresh() refuses a malformed sid or jti too", async () => {
    for (const overrides of [{ sid: "x" }, { jti: "j" }, { sid: 42 }]) {
      await refusedRefresh(tokens, await sign(refreshPayload(clock, overrides), REFRESH));
    }
  });
  await t.step("boundary lengths 8 and 64 are accepted", async () => {
    const token = await sign(
      accessPayload(clock, { sid: "s".repeat(8), jti: "j".repeat(64) }),
      ACCESS,
    );
    const claims = await tokens.verifyAccess(token);
    assertEquals([claims.sid, claims.jti], ["s".repeat(8), "j".repeat(64)]);
  });
});

// Regression: `ID.test(payload.jti ?? "")` coerced non-strings, so `jti: 12345678` passed and
// `sub` was never type-checked (needs a signing key to exploit; defence in depth).
Deno.test(
  "verifyAccess() refuses non-string jti or sub claims (claim type confusion)",
  async (t) => {
    const { clock, tokens } = world();
    await t.step("numeric jti", async () => {
      await refusedAccess(tokens, await sign(accessPayload(clock, { jti: 12345678 }), ACCESS));
    });
    await t.step("jti as a one-element array", async () => {
      const token = await sign(accessPayload(clock, { jti: ["jti_0123456789abcdef"] }), ACCESS);
      await refusedAccess(tokens, token);
    });
    await t.step("numeric sub", async () => {
      await refusedAccess(tokens, await sign(accessPayload(clock, { sub: 42 }), ACCESS));
    });
    await t.step("verifyRefresh(): numeric jti", async () => {
      await refusedRefresh(tokens, await sign(refreshPayload(clock, { jti: 12345678 }), REFRESH));
    });
  },
);

Deno.test("verifyAccess() honours exp with a 10 s leeway, exactly at the boundary", async (t) => {
  // Observed (jose 6 refuses when exp <= floor(now) - 10): accepted up to exp + 9.999 s,
  // refused from exp + 10 s on. "10 s leeway" therefore means "less than 10 s late".
  const issuedAt = new FakeClock();
  const { token } = await world({ clock: issuedAt }).tokens.signAccess(INPUT, issuedAt.now());
  const accepted = [0, ACCESS_TTL - 1, ACCESS_TTL, ACCESS_TTL + 9, ACCESS_TTL + 9.999];
  const refused = [ACCESS_TTL + 10, ACCESS_TTL + 11, ACCESS_TTL + 86400];
  for (const offset of accepted) {
    await t.step(`accepted at iat + ${offset} s (exp + ${offset - ACCESS_TTL} s)`, async () => {
      const { clock, tokens } = world();
      clock.advance(offset * 1000);
      assertEquals((await tokens.verifyAccess(token)).sub, INPUT.userId);
    });
  }
  for (const offset of refused) {
    await t.step(
      `TokenExpiredError at iat + ${offset} s (exp + ${offset - ACCESS_TTL} s)`,
      async () => {
        const { clock, tokens } = world();
        clock.advance(offset * 1000);
        const error = await assertRejects(() => tokens.verifyAccess(token), TokenExpiredError);
        assertEquals(error.code, "token_expired");
        assert(error.cause instanceof joseErrors.JWTExpired, String(error.cause));
      },
    );
  }
  await t.step("one service instance flips as its clock advances", async () => {
    const { clock, tokens } = world();
    clock.advance((ACCESS_TTL + 9) * 1000);
    await tokens.verifyAccess(token);
    clock.advance(1000);
    await assertRejects(() => tokens.verifyAccess(token), TokenExpiredError);
  });
});

Deno.test("verifyRefresh() reports an expired refresh token as TokenExpiredError", async () => {
  const { clock, tokens } = world();
  const expiresAt = new Date(clock.now().getTime() + 3600_000);
  const { token } = await tokens.signRefresh(
    { userId: INPUT.userId, sessionId: INPUT.sessionId, expiresAt },
    clock.now(),
  );
  clock.advance(3600_000 + 9_000);
  await tokens.verifyRefresh(token);
  clock.advance(1_000);
  const error = await assertRejects(() => tokens.verifyRefresh(token), TokenExpiredError);
  assertEquals(error.code, "token_expired");
});

Deno.test("verifyAccess() checks the signature before expiry", async (t) => {
  const { clock, tokens } = world();
  const { token } = await tokens.signAccess(INPUT, clock.now());
  clock.advance((ACCESS_TTL + 60) * 1000);
  await t.step("an expired token with a bad signature is invalid, not expired", async () => {
    await refusedAccess(tokens, `${token.slice(0, -2)}AA`);
  });
  await t.step("an expired token with a wrong secret is invalid, not expired", async () => {
    const forged = key(ACCESS.kid, "attacker-guess-0123456789abcdef0123456789abc");
    const payload = accessPayload(new FakeClock(), {});
    await refusedAccess(tokens, await sign(payload, forged));
  });
  await t.step("an expired token under an unknown kid is invalid, not expired", async () => {
    await refusedAccess(
      tokens,
      await sign(accessPayload(new FakeClock()), ACCESS, { kid: "gone" }),
    );
  });
});

Deno.test("verifyAccess() refuses a token whose nbf is more than 10 s ahead", async () => {
  const { clock, tokens } = world();
  const now = seconds(clock.now());
  await tokens.verifyAccess(await sign(accessPayload(clock, { nbf: now + 10 }), ACCESS));
  const error = await refusedAccess(
    tokens,
    await sign(accessPayload(clock, { nbf: now + 11 }), ACCESS),
  );
  assert(error.cause instanceof joseErrors.JWTClaimValidationFailed, String(error.cause));
});

Deno.test("verifyAccess() refuses tokens longer than 4096 characters", async () => {
  const { clock, tokens } = world();
  let atMost: string | undefined;
  let over: string | undefined;
  for (let n = 2000; n < 3200 && over === undefined; n++) {
    const token = await sign(accessPayload(clock, { pad: "x".repeat(n) }), ACCESS);
    if (token.length <= 4096) atMost = token;
    else over = token;
  }
  assert(atMost !== undefined && over !== undefined);
  assert(atMost.length >= 4094, `closest token at or under the limit has ${atMost.length} chars`);
  assert(over.length <= 4098, `closest token over the limit has ${over.length} chars`);
  await tokens.verifyAccess(atMost);
  const error = await refusedAccess(tokens, over);
  assertMatch(error.message, /malformed/);
  await refusedAccess(tokens, `${"a".repeat(100_000)}.${"b".repeat(100_000)}.c`);
});

Deno.test("verifyAccess() and verifyRefresh() refuse garbage", async (t) => {
  const { clock, tokens } = world();
  const { token } = await tokens.signAccess(INPUT, clock.now());
  const [h, p, s] = token.split(".") as [string, string, string];
  const garbage: Record<string, unknown> = {
    "empty": "",
    "one dot": ".",
    "two dots": "..",
    "three dots": "...",
    "letters": "a.b.c",
    "two parts": `${h}.${p}`,
    "four parts": `${token}.${s}`,
    "five parts (JWE shape)": `${h}.${p}.${s}.${s}.${s}`,
    "Bearer prefix": `Bearer ${token}`,
    "leading space": ` ${token}`,
    "standard base64 padding": `${h}==.${p}.${s}`,
    "header not JSON": `${b64url("not json")}.${p}.${s}`,
    "header JSON array": `${b64url("[]")}.${p}.${s}`,
    "header JSON null": `${b64url("null")}.${p}.${s}`,
    "payload not JSON": `${h}.${b64url("not json")}.${s}`,
    "payload JSON string": `${h}.${b64url('"sub"')}.${s}`,
    "non-ASCII": "\u00fc\u00f1\u00ef.c\u00f8d\u00e9.\u{1F511}",
    "NUL": "\u0000",
    "header only": h,
    "null": null,
    "undefined": undefined,
    "number": 42,
    "object": { token },
  };
  for (const [name, value] of Object.entries(garbage)) {
    await t.step(name, async () => {
      await refusedAccess(tokens, value as string);
      await refusedRefresh(tokens, value as string);
    });
  }
});

Deno.test("verifyAccess() accepts only the canonical spelling of a token", async () => {
  // jose decoded the signature segment leniently (trailing whitespace, "=" padding and the two
  // unused bits of the last character did not change the decoded MAC), so re-spellings of a
  // genuine token verified. The MAC is now compared as its one base64url text, so a token
  // string is its own identity (a cache or revocation keyed by its hash cannot be sidestepped).
  const { clock, tokens } = world();
  const signed = await tokens.signAccess(INPUT, clock.now());
  const original = await tokens.verifyAccess(signed.token);
  const body = signed.token.slice(0, -1);
  const spellings = [
    `${signed.token}\n`,
    `${signed.token} `,
    `${signed.token}=`,
    `${signed.token.slice(0, -5)}\t${signed.token.slice(-5)}`,
    ...[..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"].map((c) => body + c),
  ];
  let accepted = 0;
  for (const spelling of spellings) {
    let claims;
    try {
      claims = await tokens.verifyAccess(spelling);
    } catch (error) {
      if (error instanceof TokenInvalidError) continue;
      throw error;
    }
    accepted++;
    assertEquals(claims, original, JSON.stringify(spelling.slice(-8)));
  }
  assertEquals(accepted, 1, "only the original spelling (the last character's own) verifies");
});

Deno.test("verifyAccessSync() returns what verifyAccess() resolves and throws synchronously", async () => {
  const { clock, tokens } = world();
  const { token } = await tokens.signAccess(INPUT, clock.now());
  assertEquals(tokens.verifyAccessSync(token), await tokens.verifyAccess(token));
  let thrown: unknown;
  try {
    tokens.verifyAccessSync(`${token.slice(0, -2)}AA`);
  } catch (error) {
    thrown = error;
  }
  assert(thrown instanceof TokenInvalidError, String(thrown));
  assert(thrown.cause instanceof joseErrors.JWSSignatureVerificationFailed, String(thrown.cause));
});

Deno.test("verifyAccess() refuses JWS extensions (crit, b64) even when correctly signed", async (t) => {
  const { clock, tokens } = world();
  for (const extra of [{ crit: ["exp"] }, { b64: false, crit: ["b64"] }, { b64: true }]) {
    await t.step(JSON.stringify(extra), async () => {
      const token = await handBuilt(
        { alg: "HS256", typ: "JWT", kid: ACCESS.kid, ...extra },
        accessPayload(clock),
        ACCESS.secret,
      );
      const error = await refusedAccess(tokens, token);
      assert(error.cause instanceof joseErrors.JOSENotSupported, String(error.cause));
    });
  }
});

Deno.test("keyring rotation: old tokens verify while the old kid stays in the ring", async (t) => {
  const clock = new FakeClock();
  const before = world({ clock, accessKeys: [ACCESS_OLD], refreshKeys: [REFRESH_OLD] }).tokens;
  const oldAccess = await before.signAccess(INPUT, clock.now());
  const oldRefresh = await before.signRefresh(
    {
      userId: INPUT.userId,
      sessionId: INPUT.sessionId,
      expiresAt: new Date(clock.now().getTime() + 3600_000),
    },
    clock.now(),
  );
  assertEquals(decodeProtectedHeader(oldAccess.token).kid, ACCESS_OLD.kid);

  await t.step("ring [new, old] verifies the old token and signs with the new kid", async () => {
    const during = world({
      clock,
      accessKeys: [ACCESS, ACCESS_OLD],
      refreshKeys: [REFRESH, REFRESH_OLD],
    }).tokens;
    assertEquals((await during.verifyAccess(oldAccess.token)).jti, oldAccess.jti);
    assertEquals((await during.verifyRefresh(oldRefresh.token)).jti, oldRefresh.jti);
    const fresh = await during.signAccess(INPUT, clock.now());
    assertEquals(decodeProtectedHeader(fresh.token).kid, ACCESS.kid);
    await during.verifyAccess(fresh.token);
    const freshRefresh = await during.signRefresh(
      {
        userId: INPUT.userId,
        sessionId: INPUT.sessionId,
        expiresAt: new Date(clock.now().getTime() + 60_000),
      },
      clock.now(),
    );
    assertEquals(decodeProtectedHeader(freshRefresh.token).kid, REFRESH.kid);
  });
  await t.step("ring [new] refuses the old token as an unknown kid", async () => {
    const after = world({ clock, accessKeys: [ACCESS], refreshKeys: [REFRESH] }).tokens;
    assertMatch((await refusedAccess(after, oldAccess.token)).message, /key is unknown/);
    assertMatch((await refusedRefresh(after, oldRefresh.token)).message, /key is unknown/);
  });
  await t.step("a token under the old kid but signed with the new secret is refused", async () => {
    const during = world({ clock, accessKeys: [ACCESS, ACCESS_OLD] }).tokens;
    const token = await sign(accessPayload(clock), ACCESS, { kid: ACCESS_OLD.kid });
    const error = await refusedAccess(during, token);
    assert(error.cause instanceof joseErrors.JWSSignatureVerificationFailed, String(error.cause));
  });
});

Deno.test("createTokenService() refuses an empty keyring", async (t) => {
  for (const name of ["accessKeys", "refreshKeys"] as const) {
    await t.step(name, () => {
      let thrown: unknown;
      try {
        world({ [name]: [] });
      } catch (error) {
        thrown = error;
      }
      assert(thrown instanceof TypeError);
    });
  }
});

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const segment = fc.string({ unit: fc.constantFrom(...B64URL), maxLength: 200 });
const claimValue = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }),
);

/** Refused with one of the two documented errors, or accepted; anything else fails. */
async function onlyTokenErrors(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (error instanceof TokenInvalidError || error instanceof TokenExpiredError) return;
    throw error;
  }
}

Deno.test("verifyAccess() and verifyRefresh() throw only TokenInvalidError or TokenExpiredError", async (t) => {
  const { clock, tokens } = world();
  const { token } = await tokens.signAccess(INPUT, clock.now());

  await t.step("arbitrary strings", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.string({ unit: "binary" }),
          fc.string({ unit: "grapheme", maxLength: 300 }),
          fc.tuple(segment, segment, segment).map((parts) => parts.join(".")),
          fc.array(segment, { maxLength: 6 }).map((parts) => parts.join(".")),
        ),
        async (input) => {
          await onlyTokenErrors(() => tokens.verifyAccess(input));
          await onlyTokenErrors(() => tokens.verifyRefresh(input));
        },
      ),
      { numRuns: 300 },
    );
  });

  await t.step("one character of a real token replaced", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: token.length - 1 }),
        fc.string({ minLength: 1, maxLength: 1, unit: "binary" }),
        async (index, char) => {
          const mutated = token.slice(0, index) + char + token.slice(index + 1);
          await onlyTokenErrors(() => tokens.verifyAccess(mutated));
        },
      ),
      { numRuns: 300 },
    );
  });

  await t.step("arbitrary JSON header and payload, unsigned", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), fc.jsonValue(), segment, async (header, payload, sig) => {
        const unsigned = await handBuilt(header, payload);
        await onlyTokenErrors(() => tokens.verifyAccess(`${unsigned}${sig}`));
      }),
      { numRuns: 200 },
    );
  });

  await t.step("validly signed tokens with arbitrary claim values", async () => {
    const claimNames = ["iss", "sub", "sid", "jti", "typ", "role", "scope", "iat", "exp", "nbf"];
    await fc.assert(
      fc.asyncProperty(
        fc.record(Object.fromEntries(claimNames.map((c) => [c, claimValue])), { requiredKeys: [] }),
        fc.boolean(),
        async (overrides, asRefresh) => {
          const payload = asRefresh
            ? refreshPayload(clock, overrides)
            : accessPayload(clock, overrides);
          const signer = asRefresh ? REFRESH : ACCESS;
          const signed = await handBuilt(
            { alg: "HS256", typ: "JWT", kid: signer.kid },
            payload,
            signer.secret,
          );
          await onlyTokenErrors(() => tokens.verifyAccess(signed));
          await onlyTokenErrors(() => tokens.verifyRefresh(signed));
        },
      ),
      { numRuns: 300 },
    );
  });

  await t.step(
    "accepted access claims always have the documented shape (non-numeric claims)",
    async () => {
      // Numeric jti/sub are left out here: see the ignored known-bug test above.
      const textual = fc.oneof(
        fc.string(),
        fc.constant(null),
        fc.array(fc.string(), { maxLength: 2 }),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            sid: textual,
            jti: textual,
            role: fc.oneof(textual, fc.constantFrom(...ROLES)),
            scope: textual,
          }, {
            requiredKeys: [],
          }),
          async (overrides) => {
            const signed = await sign(accessPayload(clock, overrides), ACCESS);
            let claims;
            try {
              claims = await tokens.verifyAccess(signed);
            } catch (error) {
              if (error instanceof TokenInvalidError) return;
              throw error;
            }
            assertMatch(claims.sid, /^[A-Za-z0-9_-]{8,64}$/);
            assertMatch(claims.jti, /^[A-Za-z0-9_-]{8,64}$/);
            assert((ROLES as readonly string[]).includes(claims.role));
            assert(
              claims.scope.every((s) => typeof s === "string" && s !== "" && !s.includes(" ")),
            );
          },
        ),
        { numRuns: 200 },
      );
    },
  );
});

Deno.test("verified access tokens are remembered within a bound and until they expire", async (t) => {
  await t.step("a token presented again answers the same claims from memory", async () => {
    const { tokens, clock } = world();
    const { token } = await tokens.signAccess(INPUT, clock.now());
    const first = await tokens.verifyAccess(token);
    assertEquals(tokens.rememberedCount(), 1);
    assertEquals(await tokens.verifyAccess(token), first);
    assertEquals(tokens.rememberedCount(), 1);
  });

  await t.step("a remembered token that has since expired is refused as expired", async () => {
    const { tokens, clock } = world();
    const { token } = await tokens.signAccess(INPUT, clock.now());
    await tokens.verifyAccess(token);
    clock.advance((ACCESS_TTL + 11) * 1000);
    await assertRejects(() => tokens.verifyAccess(token), TokenExpiredError);
    assertEquals(tokens.rememberedCount(), 0);
  });

  await t.step("a tampered copy of a remembered token is still checked in full", async () => {
    const { tokens, clock } = world();
    const { token } = await tokens.signAccess(INPUT, clock.now());
    await tokens.verifyAccess(token);
    const forged = withPayload(token, { ...decodeJwt(token).payload, role: "admin" });
    await assertRejects(() => tokens.verifyAccess(forged), TokenInvalidError);
  });

  await t.step("the claims handed out cannot be changed for the next caller", async () => {
    const { tokens, clock } = world();
    const { token } = await tokens.signAccess(INPUT, clock.now());
    const claims = await tokens.verifyAccess(token);
    assert(Object.isFrozen(claims) && Object.isFrozen(claims.scope));
  });

  await t.step("never more than the bound; the oldest is forgotten first", async () => {
    const { tokens, clock } = world({ verifiedCacheSize: 3 });
    const signed = [];
    for (let i = 0; i < 10; i++) signed.push((await tokens.signAccess(INPUT, clock.now())).token);
    for (const token of signed) {
      await tokens.verifyAccess(token);
      assert(tokens.rememberedCount() <= 3);
    }
    assertEquals(tokens.rememberedCount(), 3);
    // Every token still verifies: a forgotten one is checked in full again.
    for (const token of signed) assertEquals((await tokens.verifyAccess(token)).sub, INPUT.userId);
  });

  await t.step("a bound of 0 remembers nothing", async () => {
    const { tokens, clock } = world({ verifiedCacheSize: 0 });
    await tokens.verifyAccess((await tokens.signAccess(INPUT, clock.now())).token);
    assertEquals(tokens.rememberedCount(), 0);
  });
});
