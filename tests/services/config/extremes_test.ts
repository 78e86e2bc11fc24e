/**
 * Every numeric setting at both ends of its accepted range starts the service and serves the
 * auth round trip without a 5xx (security review #10: LOCKOUT_THRESHOLD=100, a value the
 * configuration accepted, answered 500 to every login).
 */
import { z } from "zod";
import { ConfigError } from "../../../services/config/config.ts";
import { settingEntries } from "../../../services/config/settings.ts";
import { assert } from "../../_helpers/assert.ts";
import { GOOD_PASSWORD, randomUser } from "../../_helpers/accounts.ts";
import { bearer, json, jsonInit } from "../../_helpers/http.ts";
import { openWorld, testConfig } from "../../_helpers/world.ts";

/** Settings whose extremes need a partner setting, or are listening ports the test never binds. */
const SKIPPED = new Set(["HTTP_REDIRECT_PORT", "PORT"]);

function numericBounds(schema: z.ZodType): [number, number] | null {
  let inner: z.ZodType = schema;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodOptional) {
    inner = inner.unwrap() as z.ZodType;
  }
  if (!(inner instanceof z.ZodNumber)) return null;
  return [inner.minValue ?? 0, Math.min(inner.maxValue ?? Number.MAX_SAFE_INTEGER, 2 ** 40)];
}

/** The smallest or largest value the configuration accepts (`positive()` excludes 0). */
function accepted(name: string, candidates: number[]): string {
  for (const value of candidates) {
    try {
      testConfig({ [name]: String(value) });
      return String(value);
    } catch (error) {
      // Not accepted (an exclusive bound): try the next candidate.
      if (!(error instanceof ConfigError)) throw error;
    }
  }
  throw new Error(`${name}: none of ${candidates.join(", ")} is accepted`);
}

Deno.test("every numeric setting works at both ends of its range", async (t) => {
  for (const [name, declaration] of settingEntries()) {
    const bounds = numericBounds(declaration.schema);
    if (bounds === null || SKIPPED.has(name)) continue;
    const [min, max] = bounds;
    for (const value of [accepted(name, [min, min + 1]), accepted(name, [max, max - 1])]) {
      await t.step(`${name}=${value}`, async () => {
        await using w = await openWorld({ env: { [name]: value } });
        const user = randomUser();
        const statuses: number[] = [];
        const send = async (path: string, init: RequestInit) => {
          const res = await w.app.request(path, init);
          statuses.push(res.status);
          return res;
        };
        await send("/auth/register", jsonInit("POST", user));
        for (let i = 0; i < 3; i++) {
          w.clock.advance(60_000);
          await send(
            "/auth/login",
            jsonInit("POST", { email: user.email, password: "Wrong-1-Pass!" }),
          );
        }
        w.clock.advance(30 * 60_000);
        const login = await send(
          "/auth/login",
          jsonInit("POST", { email: user.email, password: GOOD_PASSWORD }),
        );
        const body = login.status === 200 ? await json(login) : {};
        if (typeof body.access_token === "string") {
          await send("/users/me", { headers: bearer(body.access_token) });
          await send("/auth/refresh", jsonInit("POST", { refresh_token: body.refresh_token }));
        }
        await send("/auth/password/forgot", jsonInit("POST", { email: user.email }));
        await w.services.background.settled();
        assert(statuses.every((s) => s < 500), `${name}=${value}: ${statuses.join(" ")}`);
      });
    }
  }
});
