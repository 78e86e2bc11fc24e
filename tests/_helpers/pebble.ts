/**
 * Let's Encrypt's test CA, Pebble (Debian `pebble`), started on loopback for one test. Debian ships
 * no certificate for Pebble's own HTTPS, so each start makes a throwaway CA and a localhost leaf.
 */
import { freePort } from "./net.ts";
import { makeCertificate } from "./tls.ts";
import { waitFor } from "./wait.ts";

/** A running Pebble; `await using` stops it and removes its files. */
export interface Pebble extends AsyncDisposable {
  /** `https://localhost:<port>/dir` */
  readonly directoryUrl: string;
  /** PEM CA of Pebble's own HTTPS listener (what `ACME_CA_FILE` points at). */
  readonly caFile: string;
  readonly caPem: string;
  /** The root that signs issued certificates (Pebble makes a new one at every start). */
  issuingRoot(): Promise<string>;
}

/** Whether the `pebble` binary is installed (tests skip with a reason otherwise). */
export function hasPebble(): boolean {
  try {
    Deno.statSync("/usr/bin/pebble");
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Starts Pebble; HTTP-01 validation connects to `localhost:<httpPort>`. */
export async function startPebble(options: { httpPort: number }): Promise<Pebble> {
  const dir = await Deno.makeTempDir({ prefix: "pebble-" });
  const { cert, key, ca } = await makeCertificate(dir);
  await Deno.writeTextFile(`${dir}/cert.pem`, cert);
  await Deno.writeTextFile(`${dir}/key.pem`, key);
  const listen = freePort();
  const management = freePort();
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${listen}`,
        managementListenAddress: `127.0.0.1:${management}`,
        certificate: `${dir}/cert.pem`,
        privateKey: `${dir}/key.pem`,
        httpPort: options.httpPort,
        tlsPort: freePort(),
        ocspResponderURL: "http://127.0.0.1:4002",
        externalAccountBindingRequired: false,
        // 90 days, like Let's Encrypt (Pebble's default is 5 years).
        certificateValidityPeriod: 7_776_000,
      },
    }),
  );
  const child = new Deno.Command("pebble", {
    args: ["-config", `${dir}/config.json`],
    env: { PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const client = Deno.createHttpClient({ caCerts: [ca] });
  const directoryUrl = `https://localhost:${listen}/dir`;
  try {
    await waitFor("pebble to listen", async () => {
      try {
        const res = await fetch(directoryUrl, { client });
        await res.body?.cancel();
        return res.ok;
      } catch (error) {
        if (error instanceof TypeError) return false;
        throw error;
      }
    });
  } catch (error) {
    child.kill();
    await child.status;
    client.close();
    throw error;
  }
  return {
    directoryUrl,
    caFile: `${dir}/ca.pem`,
    caPem: ca,
    async issuingRoot() {
      const res = await fetch(`https://localhost:${management}/roots/0`, { client });
      return await res.text();
    },
    async [Symbol.asyncDispose]() {
      client.close();
      child.kill();
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
