/** The one JWT decoder of the tests, and the few ways they forge tokens. */

/** base64url without padding, of a string (as UTF-8) or of bytes. */
export function b64url(value: string | Uint8Array): string {
  const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

/** A compact JWS split into its decoded header and payload, and its raw signature. */
export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signature: string;
}

function decodePart(part: string): Record<string, unknown> {
  return JSON.parse(
    new TextDecoder().decode(Uint8Array.fromBase64(part, { alphabet: "base64url" })),
  ) as Record<string, unknown>;
}

/** Decodes `token` without verifying it: what a client (or an attacker) can read. */
export function decodeJwt(token: string): DecodedJwt {
  const [header, payload, signature] = token.split(".");
  if (header === undefined || payload === undefined || signature === undefined) {
    throw new TypeError(`not a compact JWS: ${token.slice(0, 40)}`);
  }
  return { header: decodePart(header), payload: decodePart(payload), signature };
}

/** `token` with its payload replaced and its header and signature kept: a tampered token. */
export function withPayload(token: string, payload: unknown): string {
  const [header, , signature] = token.split(".");
  return `${header}.${b64url(JSON.stringify(payload))}.${signature}`;
}

/** `token` with its header replaced and its payload and signature kept. */
export function withHeader(token: string, header: unknown): string {
  const [, payload, signature] = token.split(".");
  return `${b64url(JSON.stringify(header))}.${payload}.${signature}`;
}
