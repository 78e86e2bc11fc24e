/**
 * Secrets while loading config: `<NAME>_FILE` indirection, JWT keyrings, and the development
 * secrets generated once and kept in `DATA_DIR/dev-secrets.json`.
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import { type AppEnvName, MIN_SECRET_BYTES, type SecretKey } from "./model.ts";

/** File access used while loading config; injected so tests need no disk. */
export interface ConfigIo {
  readTextFile(path: string): string | null;
  writeSecretFile(path: string, text: string): void;
  /**
   * Why the process cannot write the file or folder at `path` (missing permission,
   * read-only location), or null when it can. @default every location is writable
   */
  writableProblem?(path: string, kind: "file" | "dir"): string | null;
}

/** Start-up refused: lists every problem found, never a secret value. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * The value of `name`, or the contents of the file `<name>_FILE` names (one trailing newline
 * dropped). Setting both, or naming a missing file, is a problem.
 */
export function readFileSetting(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  io: ConfigIo,
  problems: string[],
): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (file === undefined || file === "") return direct;
  if (direct !== undefined && direct !== "") {
    problems.push(`"${name}" and "${name}_FILE" must not both be set`);
    return undefined;
  }
  const text = io.readTextFile(file);
  if (text === null) {
    problems.push(`"${name}_FILE" names a file that does not exist`);
    return undefined;
  }
  return text.replace(/\r?\n$/, "");
}

const SECRET_NAMES = ["JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET"] as const;
type SecretName = typeof SECRET_NAMES[number];

/** The JWT settings as parsed (`<NAME>_FILE` already read). */
export type JwtSecretSettings = {
  readonly [K in SecretName | `${SecretName}S`]?: string | undefined;
};

/** Signing keyrings and the names of secrets generated for this run. */
export interface Keyrings {
  access: SecretKey[];
  refresh: SecretKey[];
  generated: string[];
}

/**
 * Builds both keyrings from `<NAME>S` or `<NAME>`. Production refuses missing, short and shared
 * secrets; development and test generate them (development keeps them in `secretsPath`).
 */
export function resolveKeyrings(
  env: JwtSecretSettings,
  appEnv: AppEnvName,
  io: ConfigIo,
  secretsPath: string,
  problems: string[],
): Keyrings {
  const generated: string[] = [];
  let saved: Partial<Record<SecretName, string>> | null = null;
  const rings: Record<SecretName, SecretKey[]> = { JWT_ACCESS_SECRET: [], JWT_REFRESH_SECRET: [] };

  for (const name of SECRET_NAMES) {
    const ring = env[`${name}S`];
    const single = env[name];
    if (ring !== undefined && ring !== "") {
      rings[name] = parseKeyring(ring, `${name}S`, problems);
    } else if (single !== undefined && single !== "") {
      rings[name] = [{ kid: deriveKid(single), secret: new TextEncoder().encode(single) }];
    } else if (appEnv === "production") {
      problems.push(`"${name}" (or "${name}_FILE" or "${name}S") environment variable must be set`);
    } else {
      // Development and test generate a secret; development keeps it so tokens survive restarts.
      if (appEnv === "development") saved ??= readSavedSecrets(io, secretsPath);
      let value: string | undefined = saved?.[name];
      if (value === undefined) {
        value = randomBytes(48).toString("base64url");
        if (appEnv === "development") {
          saved = { ...saved, [name]: value };
          io.writeSecretFile(secretsPath, JSON.stringify(saved, null, 2));
        }
      }
      generated.push(name);
      rings[name] = [{ kid: deriveKid(value), secret: new TextEncoder().encode(value) }];
    }
  }

  for (const name of SECRET_NAMES) {
    for (const key of rings[name]) {
      if (key.secret.byteLength < MIN_SECRET_BYTES) {
        problems.push(`"${name}" key "${key.kid}" must be at least ${MIN_SECRET_BYTES} bytes`);
      }
    }
  }
  const refreshSecrets = new Set(rings.JWT_REFRESH_SECRET.map((k) => hex(k.secret)));
  if (rings.JWT_ACCESS_SECRET.some((k) => refreshSecrets.has(hex(k.secret)))) {
    problems.push(`"JWT_ACCESS_SECRET" and "JWT_REFRESH_SECRET" must be different secrets`);
  }
  return { access: rings.JWT_ACCESS_SECRET, refresh: rings.JWT_REFRESH_SECRET, generated };
}

function readSavedSecrets(io: ConfigIo, path: string): Partial<Record<SecretName, string>> {
  const text = io.readTextFile(path);
  if (text === null) return {};
  const parsed = z.record(z.string(), z.string()).safeParse(JSON.parse(text));
  if (!parsed.success) throw new ConfigError([`"${path}" is not a saved secrets file`]);
  return parsed.data;
}

function parseKeyring(value: string, name: string, problems: string[]): SecretKey[] {
  const keys: SecretKey[] = [];
  const kids = new Set<string>();
  for (const entry of value.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const sep = entry.indexOf(":");
    const kid = entry.slice(0, sep);
    if (sep <= 0 || !/^[A-Za-z0-9._-]{1,64}$/.test(kid)) {
      problems.push(`"${name}" entries must look like kid:secret`);
      continue;
    }
    if (kids.has(kid)) problems.push(`"${name}" repeats key id "${kid}"`);
    kids.add(kid);
    keys.push({ kid, secret: new TextEncoder().encode(entry.slice(sep + 1)) });
  }
  if (keys.length === 0) problems.push(`"${name}" holds no keys`);
  return keys;
}

/** A stable public key id: a truncated SHA-256 of the secret reveals nothing usable. */
function deriveKid(secret: string): string {
  return createHash("sha256").update(secret).digest("base64url").slice(0, 12);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
