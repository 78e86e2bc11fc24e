/** Test certificates made with the `openssl` command line, and TLS probes of a listener. */

/** Runs `openssl`; throws with its stderr on failure. */
export async function openssl(args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command("openssl", {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

/** Key kinds a test certificate can have. */
export type TestKey = "ec-p256" | "ec-p384" | "rsa-2048" | "rsa-3072";

/** Options of {@linkcode makeCertificate}. */
export interface MakeCertificateOptions {
  key?: TestKey;
  /** Validity in days from now (expiry tests move a fake clock instead). @default 1 */
  days?: number;
  /** Common name, also used as a file prefix. @default "localhost" */
  name?: string;
  /** An OCSP responder URL in Authority Information Access (scanners want revocation info). */
  ocspUrl?: string;
}

function keyArgs(key: TestKey): string[] {
  switch (key) {
    case "ec-p256":
      return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    case "ec-p384":
      return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1"];
    case "rsa-2048":
      return ["-newkey", "rsa:2048"];
    case "rsa-3072":
      return ["-newkey", "rsa:3072"];
  }
}

/** A test CA (one per folder, made on first use) and a leaf for localhost/127.0.0.1 in `dir`. */
export async function makeCertificate(
  dir: string,
  options: MakeCertificateOptions = {},
): Promise<{ cert: string; key: string; ca: string }> {
  const name = options.name ?? "localhost";
  const days = options.days ?? 1;
  const ca = `${dir}/ca.pem`;
  try {
    await Deno.stat(ca);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    await openssl([
      "req",
      "-x509",
      ...keyArgs("ec-p256"),
      "-nodes",
      "-keyout",
      `${dir}/ca.key`,
      "-out",
      ca,
      "-days",
      "30",
      "-subj",
      "/CN=Bulwark Test CA",
    ]);
  }
  const prefix = `${dir}/${name}-${crypto.randomUUID().slice(0, 8)}`;
  await openssl([
    "req",
    ...keyArgs(options.key ?? "ec-p256"),
    "-nodes",
    "-keyout",
    `${prefix}.key`,
    "-out",
    `${prefix}.csr`,
    "-subj",
    `/CN=${name}`,
  ]);
  await Deno.writeTextFile(
    `${prefix}.cnf`,
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" +
      (options.ocspUrl === undefined ? "" : `authorityInfoAccess=OCSP;URI:${options.ocspUrl}\n`),
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    `${prefix}.csr`,
    "-CA",
    ca,
    "-CAkey",
    `${dir}/ca.key`,
    "-CAcreateserial",
    "-out",
    `${prefix}.pem`,
    "-days",
    String(days),
    "-extfile",
    `${prefix}.cnf`,
  ]);
  return {
    cert: await Deno.readTextFile(`${prefix}.pem`),
    key: await Deno.readTextFile(`${prefix}.key`),
    ca: await Deno.readTextFile(ca),
  };
}

/** Whether a handshake at one protocol flag (`-tls1_2`…) with optional cipher list succeeds. */
export async function handshake(port: number, flag: string, cipher?: string): Promise<boolean> {
  const args = ["s_client", flag, "-connect", `127.0.0.1:${port}`, "-servername", "localhost"];
  if (cipher !== undefined) args.push("-cipher", `${cipher}@SECLEVEL=0`);
  else args.push("-cipher", "DEFAULT@SECLEVEL=0");
  const out = await new Deno.Command("openssl", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return out.success && !new TextDecoder().decode(out.stdout).includes("Cipher is (NONE)");
}

/** SHA-256 fingerprint (`AA:BB:…`) of the certificate a new connection to `port` gets. */
export async function servedFingerprint(port: number): Promise<string> {
  const out = await new Deno.Command("openssl", {
    args: ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "localhost"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
    new TextDecoder().decode(out.stdout),
  )?.[0];
  if (pem === undefined) throw new Error("no certificate served");
  return fingerprintOf(pem);
}

/** SHA-256 fingerprint of the first certificate of a PEM chain, as `X509Certificate` writes it. */
export async function fingerprintOf(pem: string): Promise<string> {
  const out = await openssl(["x509", "-noout", "-fingerprint", "-sha256"], pem);
  return out.trim().split("=")[1] ?? "";
}

/** A self-signed ECDSA P-256 pair with any validity window (expired ones included). */
export async function makeSelfSigned(
  notBefore: Date,
  notAfter: Date,
): Promise<{ cert: string; key: string }> {
  const { selfSigned } = await import("../../services/tls/self_signed.ts");
  return await selfSigned({ commonName: "localhost", domains: [], notBefore, notAfter });
}
