import { assertEquals } from "../../_helpers/assert.ts";
import { matchRedirectUri, redirectUriProblem } from "../../../services/oauth2/clients.ts";

Deno.test("matchRedirectUri() is exact: no prefix, no extra path, query or fragment", () => {
  const reg = ["https://app.example.com/cb"];
  assertEquals(matchRedirectUri(reg, "https://app.example.com/cb"), true);
  for (
    const bad of [
      "https://app.example.com/cb/",
      "https://app.example.com/cb/x",
      "https://app.example.com/cb?x",
      "https://app.example.com/c",
      "https://APP.example.com/cb",
      "https://app.example.com:443/cb",
      "https://app.example.com/cb#",
    ]
  ) {
    assertEquals(matchRedirectUri(reg, bad), false, bad);
  }
});

Deno.test("matchRedirectUri() lets a loopback URI change only its port (RFC 8252 §7.3)", () => {
  const reg = ["http://127.0.0.1/cb", "http://[::1]:8080/native"];
  assertEquals(matchRedirectUri(reg, "http://127.0.0.1:51234/cb"), true);
  assertEquals(matchRedirectUri(reg, "http://[::1]:9999/native"), true);
  assertEquals(matchRedirectUri(reg, "http://127.0.0.1:51234/cb/x"), false);
  assertEquals(matchRedirectUri(reg, "http://127.0.0.1:51234/cb?x=1"), false);
  assertEquals(matchRedirectUri(reg, "http://127.0.0.2:51234/cb"), false);
  assertEquals(matchRedirectUri(reg, "https://127.0.0.1:51234/cb"), false);
  assertEquals(
    matchRedirectUri(["https://app.example.com/cb"], "https://app.example.com:8443/cb"),
    false,
  );
});

Deno.test("redirectUriProblem() names what is wrong", () => {
  assertEquals(redirectUriProblem("https://a.example.com/cb"), null);
  assertEquals(redirectUriProblem("http://127.0.0.1:3000/cb"), null);
  assertEquals(typeof redirectUriProblem("http://a.example.com/cb"), "string");
  assertEquals(typeof redirectUriProblem("https://a.example.com/cb#f"), "string");
  assertEquals(typeof redirectUriProblem("https://*.example.com/cb"), "string");
  assertEquals(typeof redirectUriProblem("cb"), "string");
});
