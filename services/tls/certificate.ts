/**
 * Reading and judging a PEM certificate/key pair: parses the leaf, checks the key matches and is
 * strong enough, and reports its validity window. No I/O; the sources in this folder feed it.
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";

/** A PEM certificate chain (leaf first) and its private key. */
export interface TlsIdentity {
  readonly cert: string;
  readonly key: string;
}

/** What Bulwark knows about an accepted pair. */
export interface CertificateInfo {
  readonly subject: string;
  readonly issuer: string;
  /** Names the certificate covers, e.g. `["DNS:api.example.com"]`. */
  readonly altNames: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** `ECDSA P-256` or `RSA 3072` etc. */
  readonly keyType: string;
  /** Upper-case hex SHA-256 of the leaf (DER), for logs: not secret. */
  readonly fingerprint256: string;
}

/** Smallest RSA modulus accepted: NIST SP 800-57 puts 3072 bits at 128-bit security. */
export const MIN_RSA_BITS = 3072;

/** A pair that must not be served; `message` names why without key material. */
export class TlsIdentityError extends Error {
  override readonly name = "TlsIdentityError";
}

/**
 * Parses `identity` and checks that the key belongs to the leaf and is ECDSA P-256 or RSA ≥ 3072.
 *
 * @throws {TlsIdentityError} when the pair is unreadable, mismatched or weak
 */
export function inspectIdentity(identity: TlsIdentity): CertificateInfo {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(identity.cert);
  } catch (error) {
    if (error instanceof Error) throw new TlsIdentityError("the certificate is not a PEM X.509");
    throw error;
  }
  let keyObject: ReturnType<typeof createPrivateKey>;
  try {
    keyObject = createPrivateKey(identity.key);
  } catch (error) {
    if (error instanceof Error) throw new TlsIdentityError("the private key is not a PEM key");
    throw error;
  }
  if (!leaf.checkPrivateKey(keyObject)) {
    throw new TlsIdentityError("the private key does not belong to the certificate");
  }
  const keyType = describeKey(keyObject);
  return {
    subject: leaf.subject,
    issuer: leaf.issuer,
    altNames: (leaf.subjectAltName ?? "").split(/,\s*/).filter((s) => s !== ""),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    keyType,
    fingerprint256: leaf.fingerprint256,
  };
}

function describeKey(key: ReturnType<typeof createPrivateKey>): string {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "ec": {
      // OpenSSL names P-256 "prime256v1"; other curves are refused (issue: P-256 only).
      if (details.namedCurve === "prime256v1" || details.namedCurve === "P-256") {
        return "ECDSA P-256";
      }
      throw new TlsIdentityError(
        `ECDSA keys must use P-256, not ${details.namedCurve ?? "an unknown curve"}`,
      );
    }
    case "rsa": {
      const bits = details.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) {
        throw new TlsIdentityError(
          `RSA keys need at least ${MIN_RSA_BITS} bits, this one has ${bits}`,
        );
      }
      return `RSA ${bits}`;
    }
    default:
      throw new TlsIdentityError(
        `key type ${
          key.asymmetricKeyType ?? "unknown"
        } is not accepted (ECDSA P-256 or RSA ≥ ${MIN_RSA_BITS})`,
      );
  }
}
