// deno-lint-ignore-file no-console -- the one place that writes to the console.
import type { LogLevelName } from "../config/config.ts";

/** Structured fields of one log line. */
export type LogFields = Record<string, unknown>;

/** A structured JSON-lines logger. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  /** @default "info" */
  level?: LogLevelName;
  /** Where finished lines go. @default console.log / console.error */
  write?: (line: string, level: LogLevelName) => void;
  /** @default () => new Date() */
  now?: () => Date;
}

const LEVELS: Record<LogLevelName, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Field names whose values never reach a log line, whatever the caller passes
 * (OWASP Logging Cheat Sheet: no session ids, tokens, passwords or keys).
 */
const REDACTED = /pass(word)?|secret|token|authorization|cookie|api[-_]?key|hash|credential/i;

/** Creates a JSON-lines logger that redacts secret-looking fields. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = LEVELS[options.level ?? "info"];
  const write = options.write ?? defaultWrite;
  const now = options.now ?? (() => new Date());
  function log(level: LogLevelName, message: string, fields: LogFields = {}): void {
    if (LEVELS[level] < min) return;
    const line = JSON.stringify(
      { time: now().toISOString(), level, msg: message, ...fields },
      redact,
    );
    write(line, level);
  }
  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
  };
}

function redact(key: string, value: unknown): unknown {
  if (key !== "" && REDACTED.test(key) && value !== null && typeof value !== "object") {
    return "[redacted]";
  }
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  return value;
}

function defaultWrite(line: string, level: LogLevelName): void {
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
}
