// https upstreams through the real fanoutd: a test CA and server
// certificates made here with OpenSSL's C API (nothing committed, no
// openssl command), an httplib::SSLServer as the origin. Verified by
// default against the route's tls_ca_file; a certificate that is not
// trusted or names another host is a 502 naming why; tls_verify false
// is the explicit way out.

#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/fanoutd_fixture.h"
#include "tests/test_certs.h"

namespace fanout {
namespace {

using ::fanout::testing::FanoutdTest;
using ::fanout::testing::Fetched;

using ::fanout::testing::MakeCert;
using ::fanout::testing::NewKey;
using ::fanout::testing::PKey;
using ::fanout::testing::WritePem;
using Cert = ::fanout::testing::CertPtr;

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
