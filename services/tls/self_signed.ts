/**
 * Self-signed ECDSA P-256 certificates: the ACME placeholder until the first
 * real certificate exists (and the tests' certificates). Loaded only with ACME.
 *
 * @module
 */
import * as x509 from "@peculiar/x509";
import type { TlsIdentity } from "./certificate.ts";

/** What {@linkcode selfSigned} puts in the certificate. */
export interface SelfSignedOptions {
  /** Subject common name, e.g. `"Bulwark ACME pending"`. */
  commonName: string;
  /** DNS names of the subject alternative name extension; none omits it. */
  domains: readonly string[];
  notBefore: Date;
  notAfter: Date;
}

/** A fresh key pair and a certificate it signs itself, both PEM (the key as PKCS#8). */
export async function selfSigned(options: SelfSignedOptions): Promise<TlsIdentity> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${options.commonName}`,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    keys,
    signingAlgorithm: alg,
    extensions: options.domains.length === 0 ? [] : [
      new x509.SubjectAlternativeNameExtension(
        options.domains.map((d) => ({ type: "dns" as const, value: d })),
      ),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    cert: cert.toString("pem"),
    key: x509.PemConverter.encode(pkcs8, "PRIVATE KEY"),
  };
}

/** 63 random bits as hex: a positive serial, as RFC 5280 asks. */
function serialNumber(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
