// Redaction of failure evidence, client-field sanitising and source masking (§4.8, §4.9).
#include <gtest/gtest.h>

#include <string>

#include "usage/usage.h"

namespace cpamp::usage {
namespace {

TEST(RedactFailureText, AuthorizationValues) {
  EXPECT_EQ(RedactFailureText("Authorization: Bearer abc def\nnext"),
            "authorization: [redacted]\nnext");
  EXPECT_EQ(RedactFailureText("authorization=Basic dXNlcjpwYXNz; x=1"),
            "authorization: [redacted]; x=1");
  EXPECT_EQ(RedactFailureText(R"({"Authorization":"Bearer x","a":1})"),
            R"({"authorization: [redacted]","a":1})");
  // A header name that merely contains the word is not a value.
  EXPECT_EQ(RedactFailureText("x-openai-authorization-error: invalid"),
            "x-openai-authorization-error: invalid");
}

TEST(RedactFailureText, BearerTokensOfEightOrMoreChars) {
  EXPECT_EQ(RedactFailureText("sent bearer abcd.efgh_ij/k= to upstream"),
            "sent Bearer [redacted] to upstream");
  EXPECT_EQ(RedactFailureText("Bearer short"), "Bearer short");
  EXPECT_EQ(RedactFailureText("unbearer abcdefghij"), "unbearer abcdefghij");
}

TEST(RedactFailureText, TokenFieldValues) {
  EXPECT_EQ(RedactFailureText(R"({"access_token":"ya29.a0AfH6","expires_in":3599})"),
            R"({"access_token":"[redacted]","expires_in":3599})");
  EXPECT_EQ(RedactFailureText("grant refresh_token=1//0gLx-abc&client_id=c"),
            "grant refresh_token=[redacted]&client_id=c");
  EXPECT_EQ(RedactFailureText("ID_TOKEN: eyJhbGciOi.x.y end"), "ID_TOKEN: [redacted] end");
}

TEST(RedactFailureText, ApiKeyFieldValues) {
  EXPECT_EQ(RedactFailureText(R"({"api_key": "abc123"})"), R"({"api_key": "[redacted]"})");
  EXPECT_EQ(RedactFailureText("X-API-Key: zzz999"), "X-API-Key: [redacted]");
  EXPECT_EQ(RedactFailureText("invalid api key: qwerty"), "invalid api key: [redacted]");
  EXPECT_EQ(RedactFailureText("?apikey=abc&x=1"), "?apikey=[redacted]&x=1");
  EXPECT_EQ(RedactFailureText(R"({"apiKey":["k1"]})"), R"({"apiKey":["[redacted]"]})");
}

TEST(RedactFailureText, KeyShapedTokens) {
  EXPECT_EQ(RedactFailureText("Incorrect API key provided: sk-proj-AbC123_xyz-789."),
            "Incorrect API key provided: [redacted].");
  EXPECT_EQ(RedactFailureText("k=sk-ant-api03-xyzxyz"), "k=[redacted]");
  EXPECT_EQ(RedactFailureText("sk-abcdef"), "[redacted]");
  EXPECT_EQ(RedactFailureText("sk-abcde"), "sk-abcde");  // body shorter than 6
  EXPECT_EQ(RedactFailureText("sess-AbCdEf123456"), "[redacted]");
  EXPECT_EQ(RedactFailureText("ghp_0123456789abcdefABCDEF"), "[redacted]");
  EXPECT_EQ(RedactFailureText("github_pat_11ABCDEFG0123456789_abcdef"), "[redacted]");
  EXPECT_EQ(RedactFailureText("github_pat_short"), "github_pat_short");
  EXPECT_EQ(RedactFailureText("key AIzaSyA-1234567"), "key [redacted]");
  EXPECT_EQ(RedactFailureText("AIzaShort"), "AIzaShort");
  EXPECT_EQ(RedactFailureText("hf_AbCdEfGhIjKl"), "[redacted]");
  EXPECT_EQ(RedactFailureText("pk_live_0123456789"), "[redacted]");
  EXPECT_EQ(RedactFailureText("rk_test_0123456789"), "[redacted]");
  // Only at a token boundary: "task-..." and "desk-..." are words.
  EXPECT_EQ(RedactFailureText("task-abcdefgh desk-abcdefgh"), "task-abcdefgh desk-abcdefgh");
}

TEST(RedactFailureText, Cookies) {
  EXPECT_EQ(RedactFailureText(R"({"cookie": "sid=1; u=2","x":1})"),
            R"({"cookie": "[redacted]","x":1})");
  EXPECT_EQ(RedactFailureText(R"({"Set-Cookie":["a=1","b=2"],"Via":["1.1"]})"),
            R"({"Set-Cookie":["[redacted]"],"Via":["1.1"]})");
  EXPECT_EQ(RedactFailureText("HTTP/1.1 403\r\nSet-Cookie: __cf_bm=abc; path=/\r\nCookie: a=b\r\n"),
            "HTTP/1.1 403\r\nSet-Cookie: [redacted]\r\nCookie: [redacted]");
}

TEST(RedactFailureText, EmailLocalParts) {
  EXPECT_EQ(RedactFailureText("account john.doe+x@mail.example.com is banned"),
            "account j***@mail.example.com is banned");
  EXPECT_EQ(RedactFailureText("a@b.co, zed@corp.io."), "a***@b.co, z***@corp.io.");
  EXPECT_EQ(RedactFailureText("user@localhost"), "user@localhost");
  EXPECT_EQ(RedactFailureText("@handle"), "@handle");
}

TEST(RedactFailureText, StepsApplyInOrderAndAreIdempotent) {
  std::string text = R"({"error":{"message":"Incorrect API key provided: sk-proj-1234567890.",)"
                     R"("owner":"ops@example.com","access_token":"tok"},)"
                     "\"hdr\":\"Authorization: Bearer sk-abcdefghijkl\"}";
  std::string once = RedactFailureText(text);
  EXPECT_EQ(once, R"({"error":{"message":"Incorrect API key provided: [redacted].",)"
                  R"("owner":"o***@example.com","access_token":"[redacted]"},)"
                  "\"hdr\":\"authorization: [redacted]\"}");
  EXPECT_EQ(RedactFailureText(once), once);
}

TEST(RedactFailureText, TrimsAndCapsAtRuneBoundary) {
  EXPECT_EQ(RedactFailureText("  \n upstream failed \t"), "upstream failed");
  std::string exact(kFailSummaryMaxBytes, 'x');
  EXPECT_EQ(RedactFailureText(exact), exact);
  // 4095 ASCII bytes + a 3-byte rune straddles the cut: the rune is dropped whole.
  std::string straddle = std::string(kFailSummaryMaxBytes - 1, 'x') + "\xE2\x82\xAC" + "tail";
  std::string out = RedactFailureText(straddle);
  EXPECT_EQ(out, std::string(kFailSummaryMaxBytes - 1, 'x') + "...");
  std::string euros;
  for (int i = 0; i < 2000; ++i) euros += "\xE2\x82\xAC";  // 6000 bytes
  out = RedactFailureText(euros);
  EXPECT_EQ(out.size(), 4095u + 3u);  // 1365 whole runes, then "..."
  EXPECT_EQ(out.substr(out.size() - 3), "...");
  EXPECT_EQ(out.substr(0, 3), "\xE2\x82\xAC");
  EXPECT_EQ(static_cast<unsigned char>(out[out.size() - 4]), 0xAC);
}

TEST(RedactFailureText, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(RedactFailureText("bad \xC3 byte"), "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(RedactFailureText(""), "");
}

TEST(SanitizeClientField, WhitespaceAndNonGraphicRunesCollapse) {
  EXPECT_EQ(SanitizeClientField("  Mozilla/5.0\t(X11;\r\n Linux)  ", 1024),
            "Mozilla/5.0 (X11; Linux)");
  EXPECT_EQ(SanitizeClientField("a\x01\x7f"
                                "b",
                                1024),
            "a b");
  EXPECT_EQ(SanitizeClientField("a\xC2\xA0\xE2\x80\x8B"
                                "b",
                                1024),
            "a b");  // NBSP, ZWSP
  EXPECT_EQ(SanitizeClientField("caf\xC3\xA9", 1024), "caf\xC3\xA9");
  EXPECT_EQ(SanitizeClientField("\n\t", 64), "");
}

TEST(SanitizeClientField, LongValuesAreCutToMaxMinusThreePlusEllipsis) {
  std::string ip(100, '1');
  std::string out = SanitizeClientField(ip, kClientIpMaxBytes);
  EXPECT_EQ(out, std::string(61, '1') + "...");
  EXPECT_EQ(SanitizeClientField(std::string(64, '1'), kClientIpMaxBytes), std::string(64, '1'));
  // Rune boundary: the 3-byte "€" at bytes 60-62 straddles the 61-byte cut and is dropped.
  EXPECT_EQ(SanitizeClientField(std::string(60, 'a') + "\xE2\x82\xAC" + "zzzz", 64),
            std::string(60, 'a') + "...");
}

TEST(MaskSource, Emails) {
  EXPECT_EQ(MaskSource("user@example.com"), "use***@example.com");
  EXPECT_EQ(MaskSource("ab@example.com"), "ab***@example.com");
  EXPECT_EQ(MaskSource(" \xC3\xA9t\xC3\xA9@x.fr "), "\xC3\xA9t***@x.fr");  // rune boundary
}

TEST(MaskSource, SecretLookingValues) {
  EXPECT_EQ(MaskSource("sk-abc"), "m:****");
  EXPECT_EQ(MaskSource("sk-team-alpha-7c1d"), "m:sk-t...7c1d");
  EXPECT_EQ(MaskSource("AIzaSyA0123456789"), "m:AIza...6789");
  EXPECT_EQ(MaskSource(std::string(32, 'f')), "m:ffff...ffff");
  // Not secret-looking: short labels, paths, phrases.
  EXPECT_EQ(MaskSource("my-project-123"), "my-project-123");
  EXPECT_EQ(MaskSource("projects/0123456789abcdef0123456789abcdef"),
            "projects/0123456789abcdef0123456789abcdef");
  EXPECT_EQ(MaskSource("sk- something"), "sk- something");
  EXPECT_EQ(MaskSource(""), "");
}

TEST(Sha256Hex, KnownVectors) {
  // printf '' | sha256sum ; printf 'abc' | sha256sum
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace cpamp::usage
