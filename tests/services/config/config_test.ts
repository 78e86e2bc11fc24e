import { assert, assertEquals, assertThrows } from "../../_helpers/assert.ts";
import { ConfigError, describeConfig, loadConfig } from "../../../services/config/config.ts";
import { memoryIo } from "../../_helpers/world.ts";

const ACCESS = "a".repeat(40);
const REFRESH = "r".repeat(40);
const PROD = { APP_ENV: "production", JWT_ACCESS_SECRET: ACCESS, JWT_REFRESH_SECRET: REFRESH };

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("loadConfig() applies safe defaults", () => {
  const config = loadConfig(PROD, { io: memoryIo() });
  assertEquals(config.accessTokenMinutes, 30);
  assertEquals(config.refreshTokenDays, 7);
  assertEquals(config.bcryptRounds, 12);
  assertEquals(config.trustProxy, 0);
  assertEquals(config.bodyLimitBytes, 65536);
  assertEquals(config.host, "127.0.0.1");
  assertEquals(config.docsEnabled, false);
  assertEquals(config.corsOrigins, []);
  assert(Object.isFrozen(config));
});

Deno.test("loadConfig() refuses unsafe production settings, naming every problem", async (t) => {
  await t.step("missing secrets", () => {
    const problems = problemsOf(() => loadConfig({ APP_ENV: "production" }, { io: memoryIo() }));
    assert(problems.some((p) => p.includes('"JWT_ACCESS_SECRET"') && p.includes("must be set")));
    assert(problems.some((p) => p.includes('"JWT_REFRESH_SECRET"') && p.includes("must be set")));
  });
  await t.step("short secret", () => {
    const problems = problemsOf(() =>
      loadConfig({ ...PROD, JWT_ACCESS_SECRET: "short" }, { io: memoryIo() })
    );
    assert(problems.some((p) => p.includes("at least 32 bytes")));
  });
  await t.step("shared secret", () => {
    const problems = problemsOf(() =>
      loadConfig({ ...PROD, JWT_REFRESH_SECRET: ACCESS }, { io: memoryIo() })
    );
    assert(problems.some((p) => p.includes("must be different")));
  });
  await t.step("wildcard CORS", () => {
    const problems = problemsOf(() =>
      loadConfig({ ...PROD, CORS_ORIGINS: "https://a.example.com,*" }, { io: memoryIo() })
    );
    assert(problems.some((p) => p.includes('"CORS_ORIGINS" must not contain "*"')));
  });
  await t.step("all problems in one message", () => {
    const problems = problemsOf(() =>
      loadConfig({ APP_ENV: "production", CORS_ORIGINS: "*" }, { io: memoryIo() })
    );
    assertEquals(problems.length, 3);
  });
  await t.step("no secret value appears in the message", () => {
    const error = assertThrows(
      () => loadConfig({ ...PROD, JWT_REFRESH_SECRET: ACCESS }, { io: memoryIo() }),
      ConfigError,
    );
    assert(!error.message.includes(ACCESS));
  });
  await t.step("docs stay off in production unless DOCS_ENABLED=true", () => {
    assertEquals(loadConfig(PROD, { io: memoryIo() }).docsEnabled, false);
    assertEquals(
      loadConfig({ ...PROD, DOCS_ENABLED: "true" }, { io: memoryIo() }).docsEnabled,
      true,
    );
  });
  await t.step("malformed values name the variable", () => {
    const problems = problemsOf(() => loadConfig({ ...PROD, PORT: "http" }, { io: memoryIo() }));
    assert(problems.some((p) => p.startsWith('"PORT"')));
  });
  await t.step("bcrypt rounds below 10 refused", () => {
    const problems = problemsOf(() =>
      loadConfig({ ...PROD, BCRYPT_ROUNDS: "8" }, { io: memoryIo() })
    );
    assert(problems.some((p) => p.startsWith('"BCRYPT_ROUNDS"')));
  });
});

Deno.test("loadConfig() reads secrets from <NAME>_FILE", async (t) => {
  await t.step("file contents become the secret", () => {
    const io = memoryIo({ "/run/secrets/access": `${ACCESS}\n`, "/run/secrets/refresh": REFRESH });
    const config = loadConfig({
      APP_ENV: "production",
      JWT_ACCESS_SECRET_FILE: "/run/secrets/access",
      JWT_REFRESH_SECRET_FILE: "/run/secrets/refresh",
    }, { io });
    assertEquals(new TextDecoder().decode(config.accessKeys[0]?.secret), ACCESS);
    assertEquals(new TextDecoder().decode(config.refreshKeys[0]?.secret), REFRESH);
  });
  await t.step("a missing file is a problem", () => {
    const problems = problemsOf(() =>
      loadConfig({ ...PROD, JWT_ACCESS_SECRET: undefined, JWT_ACCESS_SECRET_FILE: "/nope" }, {
        io: memoryIo(),
      })
    );
    assert(problems.some((p) => p.includes('"JWT_ACCESS_SECRET_FILE"')));
  });
  await t.step("both forms at once are refused", () => {
    const io = memoryIo({ "/s": ACCESS });
    const problems = problemsOf(() =>
      loadConfig({ ...PROD, JWT_ACCESS_SECRET_FILE: "/s" }, { io })
    );
    assert(problems.some((p) => p.includes("must not both be set")));
  });
});

Deno.test("loadConfig() accepts keyrings for secret rotation", () => {
  const config = loadConfig({
    APP_ENV: "production",
    JWT_ACCESS_SECRETS: `new:${"n".repeat(32)},old:${"o".repeat(32)}`,
    JWT_REFRESH_SECRET: REFRESH,
  }, { io: memoryIo() });
  assertEquals(config.accessKeys.map((k) => k.kid), ["new", "old"]);
  const problems = problemsOf(() =>
    loadConfig({ ...PROD, JWT_ACCESS_SECRETS: "x:short,x:short" }, { io: memoryIo() })
  );
  assert(problems.some((p) => p.includes('repeats key id "x"')));
  assert(problems.some((p) => p.includes("at least 32 bytes")));
});

Deno.test("loadConfig() generates development secrets once and keeps them", async (t) => {
  const io = memoryIo();
  const first = loadConfig({ APP_ENV: "development" }, { io });
  await t.step("generated, long enough, distinct, stored", () => {
    assertEquals(first.generatedSecrets, ["JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET"]);
    assert((first.accessKeys[0]?.secret.byteLength ?? 0) >= 32);
    assert(first.accessKeys[0]?.kid !== first.refreshKeys[0]?.kid);
    assert(io.files["./data/dev-secrets.json"] !== undefined);
  });
  await t.step("a restart reuses them", () => {
    const second = loadConfig({ APP_ENV: "development" }, { io });
    assertEquals(second.accessKeys, first.accessKeys);
    assertEquals(second.refreshKeys, first.refreshKeys);
  });
  await t.step("check-config output shows no secret", () => {
    const text = JSON.stringify(describeConfig(first));
    const stored = io.files["./data/dev-secrets.json"] ?? "";
    for (const value of Object.values(JSON.parse(stored) as Record<string, string>)) {
      assert(!text.includes(value));
    }
  });
  await t.step("the file is written with mode 0600 on disk", () => {
    const dir = Deno.makeTempDirSync();
    try {
      loadConfig({ APP_ENV: "development", DATA_DIR: dir });
      assertEquals(Deno.statSync(`${dir}/dev-secrets.json`).mode! & 0o777, 0o600);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});

Deno.test("loadConfig() reads .env only in development", () => {
  const io = memoryIo({ ".env": `PORT=9123\nJWT_ACCESS_SECRET=${ACCESS}\n` });
  assertEquals(loadConfig({ APP_ENV: "development" }, { io }).port, 9123);
  assertEquals(loadConfig({ ...PROD }, { io }).port, 8000);
});
