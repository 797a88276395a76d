// https upstreams through the real fanoutd: a test CA and server
// certificates made here with OpenSSL's C API (nothing committed, no
// openssl command), an httplib::SSLServer as the origin. Verified by
// default against the route's tls_ca_file; a certificate that is not
// trusted or names another host is a 502 naming why; tls_verify false
// is the explicit way out.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::FanoutdTest;
using ::fanout::testing::Fetched;

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
using PKey = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

PKey NewKey() { return PKey(EVP_EC_gen("P-256")); }

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, signed by issuer / issuer_key (self-
// signed when issuer is null). `sans`: subjectAltName, e.g. "IP:127.0.0.1".
Cert MakeCert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca,
              const char* sans) {
  static long serial = 1;
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (ca) {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    if (sans != nullptr) AddExtension(cert.get(), signer, NID_subject_alt_name, sans);
  }
  if (issuer != nullptr) {
    AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  }
  EXPECT_GT(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()), 0);
  return cert;
}

void WritePem(X509* cert, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_X509(f, cert);
  std::fclose(f);
}

// An https origin on 127.0.0.1 with the given certificate: GET /obj/<n>
// answers a cacheable body, POST /echo the request body.
class TlsOrigin {
 public:
  TlsOrigin(X509* cert, EVP_PKEY* key) : server_(cert, key) {
    server_.Get(R"(/obj/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
      ++gets_;
      const auto n = std::stoul(req.matches[1]);
      res.set_header("Cache-Control", "max-age=60");
      res.set_content(::fanout::testing::Pattern(0, n), "application/octet-stream");
    });
    server_.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content("got " + std::to_string(req.body.size()) + ":" + req.body, "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~TlsOrigin() {
    server_.stop();
    thread_.join();
  }
  bool valid() const { return server_.is_valid() && port_ > 0; }
  int port() const { return port_; }
  int gets() const { return gets_; }

 private:
  httplib::SSLServer server_;
  int port_ = 0;
  std::atomic<int> gets_{0};
  std::thread thread_;
};

class UpstreamTlsTest : public FanoutdTest {
 protected:
  void SetUp() override {
    FanoutdTest::SetUp();
    ca_key_ = NewKey();
    ca_ = MakeCert(ca_key_.get(), "fanout test CA", nullptr, nullptr, true, nullptr);
    ca_file_ = dir_.path() + "/ca.pem";
    WritePem(ca_.get(), ca_file_);
    server_key_ = NewKey();
  }
  // fanoutd with one route to https://127.0.0.1:port and `tls` settings
  // (JSON members, e.g. "tls_ca_file": "...").
  void StartWithHttpsRoute(int port, const std::string& tls) {
    const std::string config = WriteConfig(R"({"upstream": {"read_timeout": "5s"},
      "routes": [{"prefix": "/", "upstream": "https://127.0.0.1:)" + std::to_string(port) +
                                           "\"" + (tls.empty() ? "" : ", " + tls) + "}]}");
    StartFanoutd({"--config", config});
  }
  std::string CaFileSetting() const { return R"("tls_ca_file": ")" + ca_file_ + "\""; }

  PKey ca_key_;
  Cert ca_;
  std::string ca_file_;
  PKey server_key_;
};

TEST_F(UpstreamTlsTest, AnHttpsUpstreamSignedByTheRoutesCaIsFetchedCachedAndPostedTo) {
  Cert cert = MakeCert(server_key_.get(), "localhost", ca_.get(), ca_key_.get(), false,
                       "IP:127.0.0.1,DNS:localhost");
  TlsOrigin origin(cert.get(), server_key_.get());
  ASSERT_TRUE(origin.valid());
  StartWithHttpsRoute(origin.port(), CaFileSetting());
  const Fetched first = Get("/obj/300000");
  EXPECT_EQ(first.status, 200) << first.body << fanoutd_.log();
  EXPECT_EQ(first.x_cache, "MISS");
  EXPECT_TRUE(first.transfer_ok);
  EXPECT_TRUE(first.body == ::fanout::testing::Pattern(0, 300000)) << "bytes differ";
  WaitUntilHit("/obj/300000");
  const Fetched second = Get("/obj/300000");
  EXPECT_EQ(second.x_cache, "HIT");
  EXPECT_TRUE(second.body == first.body);
  EXPECT_EQ(origin.gets(), 1);

  httplib::Client client("127.0.0.1", fanoutd_.port());
  std::string body(200000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i % 251);
  auto res = client.Post("/echo", body, "application/octet-stream");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_TRUE(res->body == "got 200000:" + body) << "the body went through TLS byte for byte";
}

TEST_F(UpstreamTlsTest, AnUntrustedCertificateIsABadGatewayNamingTheReason) {
  // Self-signed: trusted by nobody here.
  Cert self_signed = MakeCert(server_key_.get(), "localhost", nullptr, nullptr, false,
                              "IP:127.0.0.1,DNS:localhost");
  TlsOrigin origin(self_signed.get(), server_key_.get());
  ASSERT_TRUE(origin.valid());
  StartWithHttpsRoute(origin.port(), CaFileSetting());
  const Fetched f = Get("/obj/100");
  EXPECT_EQ(f.status, 502);
  EXPECT_NE(f.body.find("certificate verify failed: self-signed certificate"), std::string::npos)
      << f.body;
  EXPECT_EQ(origin.gets(), 0);
}

TEST_F(UpstreamTlsTest, ACertificateForAnotherHostIsABadGatewayNamingTheMismatch) {
  // Signed by the trusted CA, but for another name than the upstream's.
  Cert other = MakeCert(server_key_.get(), "example.com", ca_.get(), ca_key_.get(), false,
                        "DNS:example.com,IP:10.9.8.7");
  TlsOrigin origin(other.get(), server_key_.get());
  ASSERT_TRUE(origin.valid());
  StartWithHttpsRoute(origin.port(), CaFileSetting());
  const Fetched f = Get("/obj/100");
  EXPECT_EQ(f.status, 502);
  EXPECT_NE(f.body.find("certificate verify failed: IP address mismatch"), std::string::npos)
      << f.body;
  EXPECT_EQ(origin.gets(), 0);
}

TEST_F(UpstreamTlsTest, WithoutTheRoutesCaTheSystemsCasDoNotTrustTheTestCa) {
  Cert cert = MakeCert(server_key_.get(), "localhost", ca_.get(), ca_key_.get(), false,
                       "IP:127.0.0.1,DNS:localhost");
  TlsOrigin origin(cert.get(), server_key_.get());
  ASSERT_TRUE(origin.valid());
  StartWithHttpsRoute(origin.port(), "");
  const Fetched f = Get("/obj/100");
  EXPECT_EQ(f.status, 502);
  EXPECT_NE(f.body.find("certificate verify failed"), std::string::npos) << f.body;
}

TEST_F(UpstreamTlsTest, TlsVerifyFalseAcceptsAnyCertificateAndIsWarnedAbout) {
  Cert self_signed = MakeCert(server_key_.get(), "elsewhere", nullptr, nullptr, false,
                              "DNS:elsewhere.example");
  TlsOrigin origin(self_signed.get(), server_key_.get());
  ASSERT_TRUE(origin.valid());
  StartWithHttpsRoute(origin.port(), R"("tls_verify": false)");
  const Fetched f = Get("/obj/1000");
  EXPECT_EQ(f.status, 200) << f.body;
  EXPECT_TRUE(f.body == ::fanout::testing::Pattern(0, 1000));
  EXPECT_NE(fanoutd_.log().find("tls_verify is false"), std::string::npos) << fanoutd_.log();
}

}  // namespace
}  // namespace fanout
