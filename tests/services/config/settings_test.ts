import { assert, assertEquals } from "../../_helpers/assert.ts";
import { ConfigError, describeConfig, loadConfig } from "../../../services/config/config.ts";
import { fileSettingNames, settingEntries } from "../../../services/config/settings.ts";
import { memoryIo } from "../../_helpers/world.ts";

const PROD = {
  APP_ENV: "production",
  JWT_ACCESS_SECRET: "a".repeat(40),
  JWT_REFRESH_SECRET: "r".repeat(40),
  PUBLIC_URL: "https://api.example.com",
};

/** A valid value per setting that may come from `<NAME>_FILE`, and the parts never to print. */
const SAMPLES: Record<string, { value: string; hidden: string[] }> = {
  KV_URL: {
    value: "https://kvuser:kvpassword0123@kv.example.com/db?token=kvtoken0123",
    hidden: ["kvuser", "kvpassword0123", "kvtoken0123"],
  },
  JWT_ACCESS_SECRET: { value: "x".repeat(40), hidden: ["x".repeat(40)] },
  JWT_ACCESS_SECRETS: { value: `k1:${"y".repeat(40)}`, hidden: ["y".repeat(40)] },
  JWT_REFRESH_SECRET: { value: "z".repeat(40), hidden: ["z".repeat(40)] },
  JWT_REFRESH_SECRETS: { value: `k2:${"w".repeat(40)}`, hidden: ["w".repeat(40)] },
  SMTP_URL: {
    value: "smtps://mailuser:mailpassword0123@mail.example.com:465",
    hidden: ["mailuser", "mailpassword0123"],
  },
  API_KEY_PEPPER: { value: "p".repeat(40), hidden: ["p".repeat(40)] },
  CORS_ORIGINS: { value: "https://app.example.com", hidden: [] },
  OAUTH_PROVIDERS: {
    value: JSON.stringify([{
      name: "corp",
      issuer: "https://id.example.com",
      client_id: "bulwark",
      client_secret: "upstreamsecret0123456789",
    }]),
    hidden: ["upstreamsecret0123456789"],
  },
  METRICS_TOKEN: { value: "m".repeat(40), hidden: ["m".repeat(40)] },
  ALERT_WEBHOOK_SECRET: { value: "s".repeat(40), hidden: ["s".repeat(40)] },
  AUDIT_SIGNING_KEY: { value: "q".repeat(40), hidden: ["q".repeat(40)] },
  INTRUSION_RULES: { value: '{"enumeration":{"enabled":false}}', hidden: [] },
};

function problemsOf(env: Record<string, string | undefined>): readonly string[] {
  try {
    loadConfig(env, { io: memoryIo() });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("setting declarations are well formed", () => {
  for (const [name, s] of settingEntries()) {
    assert(/^[A-Z][A-Z0-9_]*$/.test(name), name);
    assert(s.doc.trim() !== "" && !s.doc.includes("\n"), `${name}: doc must be one line`);
    assert(!name.endsWith("_FILE") || !(s.secret || s.fromFile), `${name}: _FILE is reserved`);
  }
});

Deno.test("check-config prints these keys, in this order", () => {
  const config = loadConfig(PROD, { io: memoryIo() });
  assertEquals(Object.keys(describeConfig(config)), [
    "APP_ENV",
    "HOST",
    "PORT",
    "PUBLIC_URL",
    "DATA_DIR",
    "KV_PATH",
    "JWT_ACCESS_KEYS",
    "JWT_REFRESH_KEYS",
    "ACCESS_TOKEN_EXPIRE_MINUTES",
    "REFRESH_TOKEN_EXPIRE_DAYS",
    "SESSION_MAX_HOURS",
    "SESSION_IDLE_MINUTES",
    "MAX_SESSIONS_PER_USER",
    "SESSION_BIND_IP",
    "LOCKOUT_THRESHOLD",
    "LOCKOUT_MINUTES",
    "LOCKOUT_DEVICE_THRESHOLD",
    "DEVICE_COOKIE_DAYS",
    "REQUIRE_EMAIL_VERIFICATION",
    "PASSWORD_RESET_EXPIRE_MINUTES",
    "PASSWORD_MAX_AGE_DAYS",
    "PASSWORD_HISTORY",
    "BCRYPT_ROUNDS",
    "BCRYPT_BACKEND",
    "SMTP",
    "MAIL_FROM",
    "MAIL_ACCOUNT_INTERVAL_MINUTES",
    "MAIL_ACCOUNT_DAILY_LIMIT",
    "RATE_LIMITS",
    "API_KEY_HASH",
    "MAX_API_KEYS_PER_USER",
    "MAX_NOTES_PER_USER",
    "OAUTH2_ACCESS_TOKEN_MINUTES",
    "OAUTH_PROVIDERS",
    "CORS_ORIGINS",
    "HTTP_ENGINE",
    "TRUST_PROXY",
    "BODY_LIMIT_BYTES",
    "TLS",
    "HTTP_REDIRECT_PORT",
    "LOG_LEVEL",
    "DOCS_ENABLED",
    "TLS_ALLOW_TLS12",
    "ACME",
    "UPLOAD_MAX_BYTES",
    "UPLOAD_ALLOWED_EXTENSIONS",
    "UPLOAD_DIR",
    "UPLOAD_STORE",
    "UPLOAD_QUOTA_BYTES",
    "CLAMAV",
    "CLAMAV_TIMEOUT_MS",
    "UPLOADS_PUBLIC_ORIGIN",
    "METRICS_ENABLED",
    "METRICS_TOKEN",
    "ALERT_WEBHOOK_URL",
    "INTRUSION_DETECTION",
    "INTRUSION_RULES",
    "AUDIT_SIGNING_KEY",
    "AUDIT_RETENTION_DAYS",
  ]);
});

Deno.test("every <NAME>_FILE setting reads its file, and no secret is printed", async (t) => {
  for (const name of fileSettingNames()) {
    await t.step(name, () => {
      const sample = SAMPLES[name];
      assert(sample !== undefined, `add a sample value for ${name} to SAMPLES`);
      const direct = loadConfig({ ...PROD, [name]: sample.value }, { io: memoryIo() });
      const viaFile = loadConfig(
        { ...PROD, [name]: undefined, [`${name}_FILE`]: "/run/secrets/x" },
        { io: memoryIo({ "/run/secrets/x": `${sample.value}\n` }) },
      );
      const printed = JSON.stringify(describeConfig(direct));
      assertEquals(JSON.stringify(describeConfig(viaFile)), printed);
      for (const part of sample.hidden) assert(!printed.includes(part), `${name} printed`);
    });
  }
});

Deno.test("start-up refusals keep their messages", () => {
  const cases: [Record<string, string>, string][] = [
    [{ API_KEY_PEPPER: "short" }, `"API_KEY_PEPPER" must be at least 32 bytes`],
    [{ CORS_ORIGINS: "*" }, `"CORS_ORIGINS" must not contain "*" in production`],
    [
      { CORS_ORIGINS: "app.example.com" },
      `"CORS_ORIGINS" entry "app.example.com" is not an origin like https://app.example.com`,
    ],
    [{ DOCS_ENABLED: "" }, `"DOCS_ENABLED" must be "true" or "false"`],
    [{ TLS_KEY_FILE: "key.pem" }, `"TLS_CERT_FILE" and "TLS_KEY_FILE" must be set together`],
    [
      { TLS_CERT_FILE: "c.pem", TLS_KEY_FILE: "k.pem", PUBLIC_URL: "http://api.example.com" },
      `"PUBLIC_URL" must be set to an https:// origin in production with TLS`,
    ],
    [
      { HTTP_REDIRECT_PORT: "80" },
      `"HTTP_REDIRECT_PORT" needs "TLS_CERT_FILE" and "TLS_KEY_FILE", or "ACME_DIRECTORY_URL"`,
    ],
    [
      {
        ACME_DIRECTORY_URL: "https://acme.example/dir",
        ACME_DOMAINS: "api.example.com",
        HTTP_REDIRECT_PORT: "80",
      },
      `"ACME_DIRECTORY_URL" needs "ACME_EMAIL"`,
    ],
    [
      {
        ACME_DIRECTORY_URL: "https://acme.example/dir",
        ACME_EMAIL: "ops@example.com",
        HTTP_REDIRECT_PORT: "80",
      },
      `"ACME_DIRECTORY_URL" needs "ACME_DOMAINS"`,
    ],
    [
      {
        ACME_DIRECTORY_URL: "http://acme.example/dir",
        ACME_EMAIL: "ops@example.com",
        ACME_DOMAINS: "a.example",
        HTTP_REDIRECT_PORT: "80",
      },
      `"ACME_DIRECTORY_URL" must be https in production`,
    ],
    [
      {
        ACME_DIRECTORY_URL: "https://acme.example/dir",
        ACME_EMAIL: "ops@example.com",
        ACME_DOMAINS: "a.example",
        HTTP_REDIRECT_PORT: "80",
        TLS_CERT_FILE: "/c",
        TLS_KEY_FILE: "/k",
      },
      `"ACME_DIRECTORY_URL" and "TLS_CERT_FILE" exclude each other`,
    ],
    [
      { ACME_DOMAINS: "Bad_Name.example" },
      `"ACME_DOMAINS" entry "Bad_Name.example" is not a lower-case DNS name`,
    ],
    [
      { UPLOAD_ALLOWED_EXTENSIONS: "png svg" },
      `"UPLOAD_ALLOWED_EXTENSIONS" entry "svg" is not one of png jpg jpeg gif webp pdf zip`,
    ],
    [
      { UPLOADS_PUBLIC_ORIGIN: "https://u.example.net/files" },
      `"UPLOADS_PUBLIC_ORIGIN" must be an origin like https://usercontent.example.net`,
    ],
    [
      { JWT_ACCESS_SECRET: "", JWT_ACCESS_SECRETS: "" },
      `"JWT_ACCESS_SECRET" (or "JWT_ACCESS_SECRET_FILE" or "JWT_ACCESS_SECRETS") environment variable must be set`,
    ],
    [
      { JWT_REFRESH_SECRETS: "k:short" },
      `"JWT_REFRESH_SECRET" key "k" must be at least 32 bytes`,
    ],
    [
      { JWT_REFRESH_SECRET: PROD.JWT_ACCESS_SECRET },
      `"JWT_ACCESS_SECRET" and "JWT_REFRESH_SECRET" must be different secrets`,
    ],
  ];
  for (const [env, message] of cases) {
    assertEquals(problemsOf({ ...PROD, ...env }), [message], JSON.stringify(env));
  }
  assertEquals(loadConfig({ ...PROD, CORS_ORIGINS: "*", APP_ENV: "test" }).corsOrigins, ["*"]);
});

Deno.test("a cleared optional setting falls back to its default", () => {
  const config = loadConfig({ ...PROD, PORT: "", UPLOAD_ALLOWED_EXTENSIONS: "PNG, png jpg" }, {
    io: memoryIo(),
  });
  assertEquals(config.port, 8000);
  assertEquals(config.uploadAllowedExtensions, ["png", "jpg"]);
});
