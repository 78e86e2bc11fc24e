import { createOAuthAccessTokens } from "../../../services/oauth2/access_tokens.ts";
import { assertEquals } from "../../_helpers/assert.ts";
import { b64url } from "../../_helpers/jwt.ts";

const KEY = {
  kid: "k1",
  secret: new TextEncoder().encode("oauth-test-secret-0123456789abcdef0123456"),
};

function tokens() {
  return createOAuthAccessTokens({
    keys: [KEY],
    issuer: "https://auth.bulwark.test",
    audience: "https://auth.bulwark.test",
    ttlSeconds: 300,
  });
}

/** A compact JWS-shaped string with `header` as its protected header (unsigned). */
function withHeader(header: unknown): string {
  return `${b64url(JSON.stringify(header))}.${b64url("{}")}.sig`;
}

Deno.test("looksLikeOAuthToken() tells at+jwt tokens apart, every time", async (t) => {
  const oauth = tokens();
  const { token } = await oauth.sign(
    { subject: "user_0123456789abcdef", clientId: "client_0123456789", scope: [], grantId: null },
    new Date(),
  );
  const session = withHeader({ alg: "HS256", kid: "access-1", typ: "JWT" });

  await t.step("the same answer when asked again (remembered per header)", () => {
    for (let i = 0; i < 3; i++) {
      assertEquals(oauth.looksLikeOAuthToken(token), true);
      assertEquals(oauth.looksLikeOAuthToken(session), false);
    }
  });

  await t.step("a flood of distinct headers never changes an answer", () => {
    for (let i = 0; i < 500; i++) {
      assertEquals(oauth.looksLikeOAuthToken(withHeader({ typ: "JWT", n: i })), false);
      assertEquals(oauth.looksLikeOAuthToken(withHeader({ typ: "at+jwt", n: i })), true);
    }
    assertEquals(oauth.looksLikeOAuthToken(token), true);
    assertEquals(oauth.looksLikeOAuthToken(session), false);
  });

  await t.step("junk is not an OAuth2 token", () => {
    for (const junk of ["", ".", "not base64!.x.y", `${b64url("[1]")}.x.y`, "a".repeat(300)]) {
      assertEquals(oauth.looksLikeOAuthToken(junk), false, junk);
    }
    // Invalid UTF-8 in the header.
    const bad = new Uint8Array([0x7b, 0xff, 0x7d]).toBase64({ alphabet: "base64url" });
    assertEquals(oauth.looksLikeOAuthToken(`${bad}.x.y`), false);
  });
});
