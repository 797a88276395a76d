// server/upstream_connection_pool: idle connections per origin, at most
// kMaxIdlePerOrigin of them, and never one the upstream has closed.

#include "server/upstream_connection_pool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace fanout {
namespace {

// A listening socket on 127.0.0.1 whose connections the test accepts.
class Listener {
 public:
  Listener() {
    fd_ = ::fanout::testing::ListenOnLoopback(&port_);
  }
  ~Listener() {
    for (int c : accepted_) ::close(c);
    ::close(fd_);
  }
  int port() const { return port_; }
  int Accept() {
    const int c = ::accept(fd_, nullptr, nullptr);
    accepted_.push_back(c);
    return c;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> accepted_;
};

class UpstreamConnectionPoolTest : public ::testing::Test {
 protected:
  UpstreamOrigin Origin() const {
    UpstreamOrigin o;
    o.host = "127.0.0.1";
    o.port = listener_.port();
    return o;
  }
  std::unique_ptr<UpstreamConnection> Connect() {
    auto c = std::make_unique<UpstreamConnection>();
    const auto r = c->Connect(Origin(), nullptr, std::chrono::milliseconds(2000),
                              std::chrono::milliseconds(2000));
    EXPECT_TRUE(r.ok()) << r.message;
    return c;
  }
  Listener listener_;
  UpstreamConnectionPool pool_;
};

TEST_F(UpstreamConnectionPoolTest, KeepsAtMostEightIdlePerOrigin) {
  for (int i = 0; i < 10; ++i) {
    pool_.GiveBack(Origin(), Connect());
    listener_.Accept();
  }
  EXPECT_EQ(pool_.idle(), UpstreamConnectionPool::kMaxIdlePerOrigin);
  UpstreamOrigin other = Origin();
  other.port = 1;  // another origin has none
  EXPECT_EQ(pool_.Take(other), nullptr);
  for (std::size_t i = 0; i < UpstreamConnectionPool::kMaxIdlePerOrigin; ++i) {
    EXPECT_NE(pool_.Take(Origin()), nullptr) << i;
  }
  EXPECT_EQ(pool_.Take(Origin()), nullptr);
}

TEST_F(UpstreamConnectionPoolTest, AConnectionTheUpstreamClosedOrWroteToIsNotHandedOut) {
  for (const bool write : {false, true}) {
    pool_.GiveBack(Origin(), Connect());
    const int server_side = listener_.Accept();
    auto still = pool_.Take(Origin());
    ASSERT_NE(still, nullptr) << "open and quiet: reusable";
    pool_.GiveBack(Origin(), std::move(still));
    if (write) {
      ASSERT_EQ(::send(server_side, "X", 1, MSG_NOSIGNAL), 1);
    } else {
      ::shutdown(server_side, SHUT_WR);
    }
    // Once the FIN (or byte) has arrived, the connection is dropped.
    EXPECT_TRUE(::fanout::testing::WaitFor([&] {
      auto c = pool_.Take(Origin());
      if (c == nullptr) return true;
      pool_.GiveBack(Origin(), std::move(c));
      return false;
    }));
    EXPECT_EQ(pool_.idle(), 0u);
  }
}

}  // namespace
}  // namespace fanout
