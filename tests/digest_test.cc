// Integrity fields (core/digest_field) and the incremental check
// (core/body_digest), against RFC 9530's examples and OpenSSL's digests.

#include <openssl/evp.h>

#include <gtest/gtest.h>

#include "core/body_digest.h"
#include "core/digest_field.h"

namespace fanout {
namespace {

std::string Sha(const std::string& body, const EVP_MD* md) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(body.data(), body.size(), out, &n, md, nullptr);
  return std::string(reinterpret_cast<const char*>(out), n);
}

TEST(DigestFieldTest, Base64RoundTripsAndRejectsMalformedText) {
  EXPECT_EQ(EncodeBase64(""), "");
  EXPECT_EQ(EncodeBase64("f"), "Zg==");
  EXPECT_EQ(EncodeBase64("fo"), "Zm8=");
  EXPECT_EQ(EncodeBase64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(DecodeBase64("Zm9vYg=="), "foob");
  EXPECT_EQ(DecodeBase64("Zm9vYmE="), "fooba");
  EXPECT_FALSE(DecodeBase64("Zm9vYg="));    // not a multiple of 4
  EXPECT_FALSE(DecodeBase64("Zm=vYg=="));   // padding inside
  EXPECT_FALSE(DecodeBase64("Zm9v Yg="));   // not the alphabet
  EXPECT_FALSE(DecodeBase64("Z==="));       // three pads
}

TEST(DigestFieldTest, ParsesRfc9530Examples) {
  // RFC 9530 §2: the sha-256 of {"hello": "world"}.
  const auto found = ParseDigestField(
      "Repr-Digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].algorithm, DigestAlgorithm::kSha256);
  EXPECT_EQ(found[0].bytes, Sha("{\"hello\": \"world\"}", EVP_sha256()));
  EXPECT_EQ(found[0].algorithm_name(), "sha-256");
  EXPECT_EQ(found[0].field, "Repr-Digest");
}

TEST(DigestFieldTest, SkipsOtherAlgorithmsParametersAndWrongLengths) {
  const std::string sha256 = EncodeBase64(std::string(32, 'a'));
  const auto found = ParseDigestField(
      "Content-Digest", "md5=:HUXZLQLMuI/KZ5KV2GBdUQ==:, sha-256=:" + sha256 +
                            ":;p=1, sha-512=:" + sha256 + ":, sha-256=:" + sha256 + ":");
  ASSERT_EQ(found.size(), 1u) << "only the last member is usable";
  EXPECT_EQ(found[0].bytes, std::string(32, 'a'));
}

TEST(DigestFieldTest, IgnoresAFieldThatIsNotADictionaryOfByteSequences) {
  const std::string sha256 = EncodeBase64(std::string(32, 'a'));
  EXPECT_TRUE(ParseDigestField("Repr-Digest", "sha-256=" + sha256).empty()) << "not :bytes:";
  EXPECT_TRUE(ParseDigestField("Repr-Digest", "sha-256=:" + sha256 + ":,").empty());
  EXPECT_TRUE(ParseDigestField("Repr-Digest", "SHA-256=:" + sha256 + ":").empty()) << "key case";
  EXPECT_TRUE(ParseDigestField("Repr-Digest", "sha-256=:" + sha256 + ":, sha-512").empty());
  EXPECT_TRUE(ParseDigestField("Repr-Digest", "").empty());
}

TEST(DigestFieldTest, ChoosesSha512ThenReprDigest) {
  const std::string a = EncodeBase64(std::string(32, 'a'));
  const std::string b = EncodeBase64(std::string(32, 'b'));
  const std::string c = EncodeBase64(std::string(64, 'c'));
  auto chosen = ChooseDigest({{"Content-Digest", "sha-256=:" + a + ":"},
                              {"repr-digest", "sha-256=:" + b + ":"}});
  ASSERT_TRUE(chosen);
  EXPECT_EQ(chosen->field, "Repr-Digest");
  EXPECT_EQ(chosen->bytes, std::string(32, 'b'));
  chosen = ChooseDigest({{"Repr-Digest", "sha-256=:" + b + ":"},
                         {"Content-Digest", "sha-512=:" + c + ":"}});
  ASSERT_TRUE(chosen);
  EXPECT_EQ(chosen->field, "Content-Digest");
  EXPECT_EQ(chosen->algorithm, DigestAlgorithm::kSha512);
  // Two lines of one field are one list.
  chosen = ChooseDigest({{"Repr-Digest", "sha-256=:" + b + ":"},
                         {"Repr-Digest", "sha-512=:" + c + ":"}});
  ASSERT_TRUE(chosen);
  EXPECT_EQ(chosen->algorithm, DigestAlgorithm::kSha512);
  EXPECT_FALSE(ChooseDigest({{"Digest", "SHA-256=" + a}})) << "the obsolete RFC 3230 field";
}

TEST(BodyDigestTest, MatchesTheBytesGivenInPieces) {
  std::string body;
  for (int i = 0; i < 100000; ++i) body.push_back(static_cast<char>(i * 7));
  for (const EVP_MD* md : {EVP_sha256(), EVP_sha512()}) {
    AnnouncedDigest announced{"Repr-Digest",
                              md == EVP_sha256() ? DigestAlgorithm::kSha256
                                                 : DigestAlgorithm::kSha512,
                              Sha(body, md)};
    BodyDigest digest(announced);
    for (std::size_t at = 0; at < body.size(); at += 777) {
      digest.Update(body.data() + at, std::min<std::size_t>(777, body.size() - at));
    }
    EXPECT_TRUE(digest.Verify().ok());
  }
}

TEST(BodyDigestTest, AMismatchNamesTheFieldAndBothDigests) {
  const std::string body = "the stored bytes";
  AnnouncedDigest announced{"Content-Digest", DigestAlgorithm::kSha256,
                            Sha("other bytes", EVP_sha256())};
  BodyDigest digest(announced);
  digest.Update(body.data(), body.size());
  const Status st = digest.Verify();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_NE(st.message().find("Content-Digest sha-256 mismatch"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find(EncodeBase64(Sha(body, EVP_sha256()))), std::string::npos);
  EXPECT_NE(st.message().find(EncodeBase64(announced.bytes)), std::string::npos);
}

}  // namespace
}  // namespace fanout
