#include "security/security.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "base/strings.h"

// Known-answer vectors below were computed with Node.js 20's built-in crypto module, independently
// of this C++ code. To recompute them:
//
// node -e '
// const c=require("crypto"); const b64=b=>Buffer.from(b).toString("base64").replace(/=+$/,"");
// const dk=Buffer.from([...Array(32).keys()]);  // data key = bytes 0x00..0x1f
// const wk=Buffer.from(c.hkdfSync("sha256",dk,"cpa-manager-plus","settings-secrets-v1",32));
// const nonce=Buffer.from("000102030405060708090a0b","hex");
// const ci=c.createCipheriv("aes-256-gcm",wk,nonce); ci.setAAD(Buffer.from("settings-secret"));
// const ct=Buffer.concat([ci.update("cpa-management-key-123","utf8"),ci.final(),ci.getAuthTag()]);
// console.log("enc:v1:"+b64(nonce)+":"+b64(ct));
// console.log(b64(c.hkdfSync("sha256","correct horse battery staple","cpa-manager-plus",
//                            "data-key-v1",32)));
// const salt=Buffer.from([...Array(16).keys()].map(i=>i+16));  // bytes 0x10..0x1f
// console.log(b64(salt));
// console.log(b64(c.createHmac("sha256",salt).update("cpamp_0123456789ABCDEFGHIJKLMNOPqrstuv")
//                 .digest()));
// console.log(b64(c.pbkdf2Sync("cpamp_0123456789ABCDEFGHIJKLMNOPqrstuv",salt,1000,32,"sha256")));
// '

namespace cpamp::security {
namespace {

namespace fs = std::filesystem;

constexpr char kKatEncrypted[] =
    "enc:v1:AAECAwQFBgcICQoL:YDhcWBrv2jqEpJXRerspU5BcD87yk1IaXVoAVhl9f0Yhq1KQIww";
constexpr char kKatPlaintext[] = "cpa-management-key-123";
constexpr char kKatPassphrase[] = "correct horse battery staple";
constexpr char kKatStretchedKey[] = "Mv35OvLZlXWz/bfP4LF64HQUUJbI9cC24uZOA5Em3G4";
constexpr char kKatSalt[] = "EBESExQVFhcYGRobHB0eHw";
constexpr char kKatAdminKey[] = "cpamp_0123456789ABCDEFGHIJKLMNOPqrstuv";
constexpr char kKatHmac[] = "0H5hvYpeLeNly1HS6dVSjjgvdH9DzkrwbzQ7Z5W6eKE";
constexpr char kKatPbkdf2[] = "cTabfHRaYR4Bgm3NG2E/wu42ima/uqgGKYgbh8dNRb4";
constexpr char kDecryptError[] = "decrypt secret: invalid data key or corrupted ciphertext";

DataKey CountingKey() {
  DataKey key{};
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<unsigned char>(i);
  return key;
}

// Bytes whose base64 uses '+' and '/', so standard and URL-safe encodings differ.
std::string SymbolKeyBytes(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i % 2 == 0 ? 0xFB : 0xFF));
  return s;
}

std::string KeyBytes(const DataKey& key) {
  return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, std::string_view content, mode_t mode) {
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
  }
  ASSERT_EQ(::chmod(p.c_str(), mode), 0);
}

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_mode & 07777;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::path(::testing::TempDir()) / "security_test.XXXXXX").string();
    CHECK(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// ---------------------------------------------------------------------------------------------
// ParseStoredDataKey

TEST(ParseStoredDataKey, AcceptsUnpaddedStandardBase64) {
  const std::string raw = SymbolKeyBytes(32);
  const std::string text = Base64Encode(raw, /*pad=*/false);
  ASSERT_EQ(text.size(), 43u);
  ASSERT_NE(text.find_first_of("+/"), std::string::npos);
  auto key = ParseStoredDataKey(text);
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(KeyBytes(*key), raw);
}

TEST(ParseStoredDataKey, AcceptsPaddedStandardBase64) {
  const std::string raw = SymbolKeyBytes(32);
  const std::string text = Base64Encode(raw, /*pad=*/true);
  ASSERT_EQ(text.back(), '=');
  auto key = ParseStoredDataKey(text);
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(KeyBytes(*key), raw);
}

TEST(ParseStoredDataKey, AcceptsUnpaddedUrlSafeBase64) {
  const std::string raw = SymbolKeyBytes(32);
  const std::string text = Base64Encode(raw, /*pad=*/false, /*url_safe=*/true);
  ASSERT_NE(text.find_first_of("-_"), std::string::npos);
  auto key = ParseStoredDataKey(text);
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(KeyBytes(*key), raw);
}

TEST(ParseStoredDataKey, AcceptsLiteral32ByteString) {
  const std::string literal = "0123456789abcdef0123456789ABCDEF";
  auto key = ParseStoredDataKey(literal);
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(KeyBytes(*key), literal);
}

TEST(ParseStoredDataKey, TrimsSurroundingWhitespace) {
  const std::string raw = SymbolKeyBytes(32);
  auto key = ParseStoredDataKey("  \t" + Base64Encode(raw, false) + "\r\n");
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(KeyBytes(*key), raw);
  auto literal = ParseStoredDataKey(" 0123456789abcdef0123456789ABCDEF\n");
  ASSERT_TRUE(literal.has_value());
  EXPECT_EQ(KeyBytes(*literal), "0123456789abcdef0123456789ABCDEF");
}

TEST(ParseStoredDataKey, RejectsWrongLengthsAndGarbage) {
  for (size_t n : {31u, 33u}) {
    const std::string raw = SymbolKeyBytes(n);
    EXPECT_FALSE(ParseStoredDataKey(Base64Encode(raw, false))) << n;
    EXPECT_FALSE(ParseStoredDataKey(Base64Encode(raw, true))) << n;
    EXPECT_FALSE(ParseStoredDataKey(Base64Encode(raw, false, true))) << n;
    EXPECT_FALSE(ParseStoredDataKey(std::string(n, 'k'))) << n;
  }
  EXPECT_FALSE(ParseStoredDataKey(""));
  EXPECT_FALSE(ParseStoredDataKey("   \n"));
  EXPECT_FALSE(ParseStoredDataKey("not a key!"));
  EXPECT_FALSE(ParseStoredDataKey("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"));
  // Padded URL-safe is not one of the accepted forms.
  EXPECT_FALSE(ParseStoredDataKey(Base64Encode(SymbolKeyBytes(32), true, true)));
}

// ---------------------------------------------------------------------------------------------
// LoadOrCreateDataKey

TEST(LoadOrCreateDataKey, CreatesPrivateFileInExactFormatAndReloadsIt) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "nested" / "data";
  const fs::path path = dir / "data.key";
  auto created = LoadOrCreateDataKey({"", path.string()});
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->path, path.string());

  const std::string content = ReadFile(path);
  ASSERT_EQ(content.size(), 44u);
  EXPECT_EQ(content.back(), '\n');
  EXPECT_EQ(content.substr(0, 43), Base64Encode(KeyBytes(created->key), /*pad=*/false));
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(tmp.path() / "nested"), 0700u);
  // Only the key file remains: no temp file left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);

  auto reloaded = LoadOrCreateDataKey({"", path.string()});
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().message();
  EXPECT_FALSE(reloaded->created);
  EXPECT_EQ(reloaded->key, created->key);
  EXPECT_EQ(ReadFile(path), content);
}

TEST(LoadOrCreateDataKey, GeneratesDifferentKeysInDifferentDirectories) {
  TempDir a;
  TempDir b;
  auto ka = LoadOrCreateDataKey({"", (a.path() / "data.key").string()});
  auto kb = LoadOrCreateDataKey({"", (b.path() / "data.key").string()});
  ASSERT_TRUE(ka.ok() && kb.ok());
  EXPECT_NE(ka->key, kb->key);
}

TEST(LoadOrCreateDataKey, ConfiguredStoredKeyIsUsedDirectlyAndNothingIsWritten) {
  TempDir tmp;
  const fs::path path = tmp.path() / "data.key";
  const std::string raw = SymbolKeyBytes(32);
  auto loaded = LoadOrCreateDataKey({" " + Base64Encode(raw, true) + "\n", path.string()});
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(KeyBytes(loaded->key), raw);
  EXPECT_FALSE(loaded->created);
  EXPECT_EQ(loaded->path, "");
  EXPECT_FALSE(fs::exists(path));
}

TEST(LoadOrCreateDataKey, ConfiguredPassphraseIsStretchedWithHkdf) {
  TempDir tmp;
  const fs::path path = tmp.path() / "data.key";
  auto loaded = LoadOrCreateDataKey({kKatPassphrase, path.string()});
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(Base64Encode(KeyBytes(loaded->key), false), kKatStretchedKey);
  EXPECT_FALSE(loaded->created);
  EXPECT_FALSE(fs::exists(path));
}

TEST(LoadOrCreateDataKey, ConfiguredSecretWinsOverExistingFile) {
  TempDir tmp;
  const fs::path path = tmp.path() / "data.key";
  WriteFile(path, Base64Encode(SymbolKeyBytes(32), false) + "\n", 0600);
  auto loaded = LoadOrCreateDataKey({kKatPassphrase, path.string()});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(Base64Encode(KeyBytes(loaded->key), false), kKatStretchedKey);
}

TEST(LoadOrCreateDataKey, InvalidFileIsAnErrorAndIsLeftAlone) {
  TempDir tmp;
  const fs::path path = tmp.path() / "data.key";
  const std::string bad = Base64Encode(SymbolKeyBytes(31), false) + "\n";
  WriteFile(path, bad, 0600);
  auto loaded = LoadOrCreateDataKey({"", path.string()});
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().message(), "data key must be 32 bytes or base64-encoded 32 bytes");
  EXPECT_EQ(loaded.status().code(), ErrorCode::kRequestFailed);
  EXPECT_EQ(ReadFile(path), bad);

  WriteFile(path, "", 0600);
  auto empty = LoadOrCreateDataKey({"", path.string()});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(), "data key must be 32 bytes or base64-encoded 32 bytes");
}

TEST(LoadOrCreateDataKey, AcceptsExistingFilesInEveryStoredForm) {
  TempDir tmp;
  const fs::path path = tmp.path() / "data.key";
  const std::string raw = SymbolKeyBytes(32);
  for (const std::string& content :
       {Base64Encode(raw, false), Base64Encode(raw, true) + "\n", Base64Encode(raw, false, true),
        std::string("0123456789abcdef0123456789ABCDEF")}) {
    WriteFile(path, content, 0600);
    auto loaded = LoadOrCreateDataKey({"", path.string()});
    ASSERT_TRUE(loaded.ok()) << content;
    EXPECT_FALSE(loaded->created);
    EXPECT_EQ(ParseStoredDataKey(content), loaded->key);
  }
}

TEST(LoadOrCreateDataKey, TightensLoosePermissions) {
  TempDir tmp;
  const fs::path path = tmp.path() / "data.key";
  const std::string raw = SymbolKeyBytes(32);
  WriteFile(path, Base64Encode(raw, false) + "\n", 0644);
  ASSERT_EQ(ModeOf(path), 0644u);
  auto loaded = LoadOrCreateDataKey({"", path.string()});
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(KeyBytes(loaded->key), raw);
  EXPECT_EQ(ModeOf(path), 0600u);
}

TEST(LoadOrCreateDataKey, ReportsDiskErrors) {
  TempDir tmp;
  const fs::path blocker = tmp.path() / "not-a-dir";
  WriteFile(blocker, "x", 0600);
  auto loaded = LoadOrCreateDataKey({"", (blocker / "data.key").string()});
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), ErrorCode::kRequestFailed);

  auto empty_path = LoadOrCreateDataKey({"", ""});
  EXPECT_FALSE(empty_path.ok());
}

// ---------------------------------------------------------------------------------------------
// SecretBox

TEST(SecretBox, MatchesNodeKnownAnswerVector) {
  SecretBox box(CountingKey());
  const std::string nonce("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b", 12);
  auto encrypted = box.EncryptWithNonce(kKatPlaintext, nonce);
  ASSERT_TRUE(encrypted.ok()) << encrypted.status().message();
  EXPECT_EQ(*encrypted, kKatEncrypted);
  auto decrypted = box.Decrypt(kKatEncrypted);
  ASSERT_TRUE(decrypted.ok()) << decrypted.status().message();
  EXPECT_EQ(*decrypted, kKatPlaintext);
}

TEST(SecretBox, RoundTripsWithFreshNonces) {
  SecretBox box(CountingKey());
  auto a = box.Encrypt("management-key");
  auto b = box.Encrypt("management-key");
  ASSERT_TRUE(a.ok() && b.ok());
  const std::regex format("^enc:v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/]+$");
  EXPECT_TRUE(std::regex_match(*a, format)) << *a;
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(SecretBox::IsEncrypted(*a));
  EXPECT_EQ(box.Decrypt(*a).value(), "management-key");
  EXPECT_EQ(box.Decrypt(*b).value(), "management-key");
}

TEST(SecretBox, EncryptTrimsAndPassesThroughEmptyAndEncryptedValues) {
  SecretBox box(CountingKey());
  auto trimmed = box.Encrypt("  management-key \n");
  ASSERT_TRUE(trimmed.ok());
  EXPECT_EQ(box.Decrypt(*trimmed).value(), "management-key");
  EXPECT_EQ(box.Encrypt("").value(), "");
  EXPECT_EQ(box.Encrypt(" \t\n").value(), "");
  EXPECT_EQ(box.Encrypt(kKatEncrypted).value(), kKatEncrypted);
  EXPECT_EQ(box.Encrypt(std::string(" ") + kKatEncrypted + "\n").value(), kKatEncrypted);
}

TEST(SecretBox, DecryptPassesLegacyPlaintextThroughUnchanged) {
  SecretBox box(CountingKey());
  EXPECT_EQ(box.Decrypt("legacy-plain-key").value(), "legacy-plain-key");
  EXPECT_EQ(box.Decrypt("").value(), "");
  EXPECT_EQ(box.Decrypt("enc:v2:abc").value(), "enc:v2:abc");
  EXPECT_FALSE(SecretBox::IsEncrypted("legacy-plain-key"));
  EXPECT_TRUE(SecretBox::IsEncrypted(" enc:v1:x:y"));
}

TEST(SecretBox, DecryptToleratesSurroundingWhitespaceAndBase64Padding) {
  SecretBox box(CountingKey());
  EXPECT_EQ(box.Decrypt(std::string(" ") + kKatEncrypted + "\n").value(), kKatPlaintext);
  EXPECT_EQ(box.Decrypt(std::string(kKatEncrypted) + "=").value(), kKatPlaintext);
}

void ExpectDecryptFailure(const SecretBox& box, const std::string& stored) {
  auto r = box.Decrypt(stored);
  ASSERT_FALSE(r.ok()) << stored;
  EXPECT_EQ(r.status().message(), kDecryptError) << stored;
  EXPECT_EQ(r.status().code(), ErrorCode::kRequestFailed);
}

TEST(SecretBox, TamperedCiphertextFailsWithExactMessage) {
  SecretBox box(CountingKey());
  const std::string good = kKatEncrypted;
  const size_t body = good.rfind(':') + 1;
  for (size_t pos : {body, body + 10, good.size() - 1}) {
    std::string bad = good;
    bad[pos] = bad[pos] == 'A' ? 'B' : 'A';
    ExpectDecryptFailure(box, bad);
  }
  std::string bad_nonce = good;
  bad_nonce[8] = bad_nonce[8] == 'A' ? 'B' : 'A';
  ExpectDecryptFailure(box, bad_nonce);
  ExpectDecryptFailure(box, good.substr(0, good.size() - 4));  // truncated tag
}

TEST(SecretBox, WrongDataKeyFailsWithExactMessage) {
  DataKey other = CountingKey();
  other[0] ^= 1;
  ExpectDecryptFailure(SecretBox(other), kKatEncrypted);
}

TEST(SecretBox, MalformedFramingFailsWithExactMessage) {
  SecretBox box(CountingKey());
  for (const char* stored :
       {"enc:v1:", "enc:v1:AAECAwQFBgcICQoL", "enc:v1:!!!:YDhcWBrv2jqEpJXRerspU5BcD8",
        "enc:v1:AAECAwQF:YDhcWBrv2jqEpJXRerspU5BcD87yk1IaXVoAVhl9f0Yhq1KQIww",
        "enc:v1:AAECAwQFBgcICQoL:AAAA", "enc:v1:AAECAwQFBgcICQoL:", "enc:v1::"}) {
    ExpectDecryptFailure(box, stored);
  }
}

TEST(SecretBox, EncryptWithNonceRejectsWrongNonceLength) {
  SecretBox box(CountingKey());
  EXPECT_FALSE(box.EncryptWithNonce("x", std::string(11, '\0')).ok());
  EXPECT_FALSE(box.EncryptWithNonce("x", std::string(16, '\0')).ok());
}

TEST(SecretBox, CopiesDecryptWhatTheOriginalEncrypted) {
  auto box = std::make_unique<SecretBox>(CountingKey());
  auto sealed = box->Encrypt("k-123456");
  SecretBox copy = *box;
  box.reset();
  EXPECT_EQ(copy.Decrypt(sealed.value()).value(), "k-123456");
}

// ---------------------------------------------------------------------------------------------
// Randomness and admin keys

TEST(RandomBytes, ReturnsRequestedLengthAndVaries) {
  EXPECT_EQ(RandomBytes(0), "");
  EXPECT_EQ(RandomBytes(17).size(), 17u);
  EXPECT_NE(RandomBytes(32), RandomBytes(32));
}

TEST(GenerateAdminKey, HasCpampFormatAndIsUnique) {
  const std::regex format("^cpamp_[0-9A-Za-z]{32}$");
  std::set<std::string> keys;
  std::set<char> alphabet_seen;
  for (int i = 0; i < 500; ++i) {
    std::string key = GenerateAdminKey();
    ASSERT_TRUE(std::regex_match(key, format)) << key;
    keys.insert(key);
    alphabet_seen.insert(key.begin() + 6, key.end());
  }
  EXPECT_EQ(keys.size(), 500u);
  // 16,000 uniform draws over 62 characters: every character shows up.
  EXPECT_EQ(alphabet_seen.size(), 62u);
}

// ---------------------------------------------------------------------------------------------
// Admin credential

AdminCredential KatCredential(int iterations, const std::string& hash) {
  AdminCredential c;
  c.salt_b64 = kKatSalt;
  c.key_hash_b64 = hash;
  c.iterations = iterations;
  c.created_at_ms = 1750000000000;
  c.source = "env";
  return c;
}

TEST(AdminCredential, VerifiesNodeHmacVector) {
  const AdminCredential c = KatCredential(1, kKatHmac);
  EXPECT_TRUE(VerifyAdminKey(c, kKatAdminKey));
  EXPECT_TRUE(VerifyAdminKey(c, std::string("  ") + kKatAdminKey + "\n"));
  EXPECT_FALSE(VerifyAdminKey(c, "cpamp_0123456789ABCDEFGHIJKLMNOPqrstuw"));
  EXPECT_FALSE(VerifyAdminKey(c, ""));
  EXPECT_FALSE(VerifyAdminKey(c, "   "));
}

TEST(AdminCredential, VerifiesNodePbkdf2VectorWhenIterationsAboveOne) {
  EXPECT_TRUE(VerifyAdminKey(KatCredential(1000, kKatPbkdf2), kKatAdminKey));
  EXPECT_FALSE(VerifyAdminKey(KatCredential(999, kKatPbkdf2), kKatAdminKey));
  EXPECT_FALSE(VerifyAdminKey(KatCredential(1, kKatPbkdf2), kKatAdminKey));
  EXPECT_FALSE(VerifyAdminKey(KatCredential(1000, kKatHmac), kKatAdminKey));
  // iterations 0 (absent in JSON) means HMAC, like 1.
  EXPECT_TRUE(VerifyAdminKey(KatCredential(0, kKatHmac), kKatAdminKey));
}

TEST(AdminCredential, AcceptsPaddedBase64AndRejectsBrokenFields) {
  AdminCredential padded = KatCredential(1, std::string(kKatHmac) + "=");
  padded.salt_b64 = std::string(kKatSalt) + "==";
  EXPECT_TRUE(VerifyAdminKey(padded, kKatAdminKey));

  AdminCredential bad_salt = KatCredential(1, kKatHmac);
  bad_salt.salt_b64 = "***";
  EXPECT_FALSE(VerifyAdminKey(bad_salt, kKatAdminKey));
  EXPECT_FALSE(VerifyAdminKey(KatCredential(1, ""), kKatAdminKey));
  EXPECT_FALSE(VerifyAdminKey(KatCredential(1, std::string(kKatHmac).substr(0, 40)), kKatAdminKey));
}

TEST(AdminCredential, MakeProducesVerifiableUnpaddedCredential) {
  AdminCredential c = MakeAdminCredential("  my-admin-key\n", "cli", 1750000000000);
  EXPECT_EQ(c.version, 1);
  EXPECT_EQ(c.iterations, 1);
  EXPECT_EQ(c.created_at_ms, 1750000000000);
  EXPECT_EQ(c.rotated_at_ms, 0);
  EXPECT_EQ(c.source, "cli");
  EXPECT_EQ(c.salt_b64.size(), 22u);      // 16 bytes, unpadded
  EXPECT_EQ(c.key_hash_b64.size(), 43u);  // 32 bytes, unpadded
  EXPECT_EQ(c.salt_b64.find('='), std::string::npos);
  EXPECT_EQ(c.key_hash_b64.find('='), std::string::npos);
  EXPECT_TRUE(VerifyAdminKey(c, "my-admin-key"));
  EXPECT_FALSE(VerifyAdminKey(c, "my-admin-key2"));
  EXPECT_NE(MakeAdminCredential("my-admin-key", "cli", 1).salt_b64, c.salt_b64);
}

TEST(AdminCredential, EmptyKeyNeverVerifies) {
  AdminCredential c = MakeAdminCredential("", "env", 1);
  EXPECT_FALSE(VerifyAdminKey(c, ""));
  EXPECT_FALSE(VerifyAdminKey(c, " "));
}

TEST(AdminCredential, JsonHasUpstreamShapeAndOmitsZeroRotation) {
  AdminCredential c = KatCredential(1, kKatHmac);
  c.source = "generated";
  EXPECT_EQ(AdminCredentialToJson(c),
            std::string(R"({"version":1,"salt":")") + kKatSalt + R"(","keyHash":")" + kKatHmac +
                R"(","iterations":1,"createdAtMs":1750000000000,"source":"generated"})");
  c.rotated_at_ms = 1750000500000;
  c.source = "cli-generated";
  EXPECT_EQ(AdminCredentialToJson(c),
            std::string(R"({"version":1,"salt":")") + kKatSalt + R"(","keyHash":")" + kKatHmac +
                R"(","iterations":1,"createdAtMs":1750000000000,"rotatedAtMs":1750000500000,)"
                R"("source":"cli-generated"})");
}

TEST(AdminCredential, JsonRoundTrips) {
  AdminCredential c = MakeAdminCredential(kKatAdminKey, "cli", 1750000000000);
  c.rotated_at_ms = 1750000500000;
  auto back = AdminCredentialFromJson(AdminCredentialToJson(c));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->version, c.version);
  EXPECT_EQ(back->salt_b64, c.salt_b64);
  EXPECT_EQ(back->key_hash_b64, c.key_hash_b64);
  EXPECT_EQ(back->iterations, c.iterations);
  EXPECT_EQ(back->created_at_ms, c.created_at_ms);
  EXPECT_EQ(back->rotated_at_ms, c.rotated_at_ms);
  EXPECT_EQ(back->source, c.source);
  EXPECT_TRUE(VerifyAdminKey(*back, kKatAdminKey));
}

TEST(AdminCredential, ParsesStoredUpstreamJson) {
  auto c = AdminCredentialFromJson(
      std::string(R"({"version":1,"salt":")") + kKatSalt + R"(","keyHash":")" + kKatHmac +
      R"(","iterations":1,"createdAtMs":1750000000000,"source":"env"})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->rotated_at_ms, 0);
  EXPECT_EQ(c->source, "env");
  EXPECT_TRUE(VerifyAdminKey(*c, kKatAdminKey));
}

TEST(AdminCredential, FromJsonRejectsNonObjectsAndDefaultsMissingFields) {
  EXPECT_FALSE(AdminCredentialFromJson("not json").ok());
  EXPECT_FALSE(AdminCredentialFromJson("[1,2]").ok());
  EXPECT_EQ(AdminCredentialFromJson("{").status().code(), ErrorCode::kRequestFailed);
  auto empty = AdminCredentialFromJson("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->salt_b64, "");
  EXPECT_FALSE(VerifyAdminKey(*empty, kKatAdminKey));
}

// ---------------------------------------------------------------------------------------------
// LoginThrottle

TEST(LoginThrottle, FreeFailuresThenGrowingCappedDelayThenLockout) {
  FakeClock clock;
  LoginThrottle throttle(clock);
  const std::vector<int64_t> expected_delays = {0, 0, 0, 250, 500, 1000, 2000, 4000, 4000};
  for (size_t i = 0; i < expected_delays.size(); ++i) {
    EXPECT_FALSE(throttle.Check("10.0.0.1").locked_out) << i;
    ThrottleDecision d = throttle.RecordFailure("10.0.0.1");
    EXPECT_EQ(d.delay_ms, expected_delays[i]) << "failure " << i + 1;
    EXPECT_FALSE(d.locked_out) << i;
  }
  ThrottleDecision tenth = throttle.RecordFailure("10.0.0.1");
  EXPECT_TRUE(tenth.locked_out);
  EXPECT_EQ(tenth.retry_after_s, 900);
  EXPECT_EQ(tenth.delay_ms, 4000);

  ThrottleDecision check = throttle.Check("10.0.0.1");
  EXPECT_TRUE(check.locked_out);
  EXPECT_EQ(check.retry_after_s, 900);
  EXPECT_EQ(check.delay_ms, 0);
  clock.Advance(1500);
  EXPECT_EQ(throttle.Check("10.0.0.1").retry_after_s, 899);  // 898.5 s rounds up
}

TEST(LoginThrottle, LockoutExpiresAfterLockoutPeriod) {
  FakeClock clock;
  ThrottlePolicy policy;
  policy.window_ms = 60'000;
  policy.lockout_ms = 120'000;
  LoginThrottle throttle(clock, policy);
  for (int i = 0; i < policy.lockout_failures; ++i) throttle.RecordFailure("a");
  ASSERT_TRUE(throttle.Check("a").locked_out);
  clock.Advance(119'999);
  ThrottleDecision last = throttle.Check("a");
  EXPECT_TRUE(last.locked_out);
  EXPECT_EQ(last.retry_after_s, 1);
  clock.Advance(1);
  EXPECT_FALSE(throttle.Check("a").locked_out);
  EXPECT_EQ(throttle.TrackedAddresses(), 0u);
  EXPECT_EQ(throttle.RecordFailure("a").delay_ms, 0);  // counting starts afresh
}

TEST(LoginThrottle, FailuresWhileLockedDoNotExtendTheLock) {
  FakeClock clock;
  LoginThrottle throttle(clock);
  for (int i = 0; i < 10; ++i) throttle.RecordFailure("a");
  clock.Advance(60'000);
  ThrottleDecision d = throttle.RecordFailure("a");
  EXPECT_TRUE(d.locked_out);
  EXPECT_EQ(d.retry_after_s, 840);
  EXPECT_EQ(throttle.Check("a").retry_after_s, 840);
}

TEST(LoginThrottle, LockShorterThanWindowRestartsCountingAfterwards) {
  FakeClock clock;
  ThrottlePolicy policy;
  policy.lockout_ms = 1000;
  LoginThrottle throttle(clock, policy);
  for (int i = 0; i < 10; ++i) throttle.RecordFailure("a");
  clock.Advance(1000);
  EXPECT_FALSE(throttle.Check("a").locked_out);
  ThrottleDecision d = throttle.RecordFailure("a");
  EXPECT_FALSE(d.locked_out);
  EXPECT_EQ(d.delay_ms, 0);
}

TEST(LoginThrottle, WindowExpiryForgetsOldFailures) {
  FakeClock clock;
  LoginThrottle throttle(clock);
  for (int i = 0; i < 6; ++i) throttle.RecordFailure("a");
  clock.Advance(15 * 60 * 1000);
  EXPECT_EQ(throttle.RecordFailure("a").delay_ms, 0);
}

TEST(LoginThrottle, SuccessClearsOnlyThatAddressAndOthersAreUnaffected) {
  FakeClock clock;
  LoginThrottle throttle(clock);
  for (int i = 0; i < 5; ++i) {
    throttle.RecordFailure("a");
    throttle.RecordFailure("b");
  }
  throttle.RecordSuccess("a");
  EXPECT_EQ(throttle.RecordFailure("a").delay_ms, 0);
  EXPECT_EQ(throttle.RecordFailure("b").delay_ms, 1000);  // b's 6th failure

  for (int i = 0; i < 10; ++i) throttle.RecordFailure("locked");
  ASSERT_TRUE(throttle.Check("locked").locked_out);
  EXPECT_FALSE(throttle.Check("fresh").locked_out);
  EXPECT_EQ(throttle.RecordFailure("fresh").delay_ms, 0);
  throttle.RecordSuccess("fresh");
  EXPECT_TRUE(throttle.Check("locked").locked_out);
}

TEST(LoginThrottle, TrackedAddressesAreBoundedEvictingLeastRecentlyTouched) {
  FakeClock clock;
  ThrottlePolicy policy;
  policy.max_tracked_addresses = 5;
  LoginThrottle throttle(clock, policy);
  for (int a = 0; a < 5; ++a) {
    for (int i = 0; i < 4; ++i) throttle.RecordFailure("a" + std::to_string(a));
  }
  EXPECT_EQ(throttle.TrackedAddresses(), 5u);
  throttle.RecordFailure("a0");  // a0 becomes the most recently touched (5th failure)
  throttle.RecordFailure("a5");
  throttle.RecordFailure("a6");
  EXPECT_EQ(throttle.TrackedAddresses(), 5u);
  EXPECT_EQ(throttle.RecordFailure("a0").delay_ms, 1000);  // kept: 6th failure
  EXPECT_EQ(throttle.RecordFailure("a1").delay_ms, 0);     // evicted: counts from 1
  EXPECT_EQ(throttle.TrackedAddresses(), 5u);
}

TEST(LoginThrottle, ExpiredEntriesAreDroppedBeforeLiveOnes) {
  FakeClock clock;
  ThrottlePolicy policy;
  policy.max_tracked_addresses = 3;
  LoginThrottle throttle(clock, policy);
  throttle.RecordFailure("a");
  throttle.RecordFailure("b");
  throttle.RecordFailure("c");
  clock.Advance(policy.window_ms);
  throttle.RecordFailure("d");
  EXPECT_EQ(throttle.TrackedAddresses(), 1u);
}

TEST(LoginThrottle, IsSafeUnderConcurrentUse) {
  FakeClock clock;
  ThrottlePolicy policy;
  policy.lockout_failures = 1'000'000;
  policy.max_tracked_addresses = 50;
  LoginThrottle throttle(clock, policy);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&throttle, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string addr = "10.0." + std::to_string(t) + "." + std::to_string(i % 40);
        throttle.Check(addr);
        throttle.RecordFailure(addr);
        if (i % 7 == 0) throttle.RecordSuccess(addr);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(throttle.TrackedAddresses(), 50u);
  EXPECT_GT(throttle.TrackedAddresses(), 0u);
}

}  // namespace
}  // namespace cpamp::security
