#include "core/body_digest.h"

#include <openssl/evp.h>

namespace fanout {

struct BodyDigest::Context {
  EVP_MD_CTX* md = nullptr;
  ~Context() { EVP_MD_CTX_free(md); }
};

BodyDigest::BodyDigest(AnnouncedDigest expected)
    : expected_(std::move(expected)), context_(std::make_unique<Context>()) {
  context_->md = EVP_MD_CTX_new();
  const EVP_MD* md =
      expected_.algorithm == DigestAlgorithm::kSha256 ? EVP_sha256() : EVP_sha512();
  if (context_->md != nullptr && EVP_DigestInit_ex(context_->md, md, nullptr) != 1) {
    EVP_MD_CTX_free(context_->md);
    context_->md = nullptr;
  }
}

BodyDigest::~BodyDigest() = default;
BodyDigest::BodyDigest(BodyDigest&&) noexcept = default;
BodyDigest& BodyDigest::operator=(BodyDigest&&) noexcept = default;

void BodyDigest::Update(const char* data, std::size_t n) {
  if (context_->md != nullptr && n > 0) EVP_DigestUpdate(context_->md, data, n);
}

Status BodyDigest::Verify() {
  const std::string what = expected_.field + " " + expected_.algorithm_name();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (context_->md == nullptr || EVP_DigestFinal_ex(context_->md, out, &length) != 1) {
    return Status::IOError("cannot compute " + what + " (OpenSSL)");
  }
  const std::string actual(reinterpret_cast<const char*>(out), length);
  if (actual != expected_.bytes) {
    return Status::Corruption(what + " mismatch: the response announced :" +
                              EncodeBase64(expected_.bytes) + ": but its body has :" +
                              EncodeBase64(actual) + ":");
  }
  return Status::Ok();
}

}  // namespace fanout
