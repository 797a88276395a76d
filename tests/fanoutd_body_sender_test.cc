// Integration tests of the body sender (server/body_sender.h): large bodies
// are sent by a few event-loop threads instead of one thread per
// connection, keep-alive connections come back for their next request,
// readers parked at the frontier get every byte, and a client that stops
// reading is closed after client_timeout; idle keep-alive connections wait
// in the same loops, answered there, and closed after the keep-alive timeout. Which bodies the sender has is
// read from the admin interface's /stats.

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::Fetched;
using ::fanout::testing::RawConnection;
using ::fanout::testing::WaitFor;

class BodySenderTest : public ::fanout::testing::FanoutdTest {
 protected:
  int HandedOff() { return Stats()["bodies_handed_off"].get<int>(); }
  int Sending() { return Stats()["bodies_sending"].get<int>(); }
  int Idle() { return Stats()["connections_idle"].get<int>(); }

  // The daemon's thread count, from /proc.
  int Threads() {
    std::ifstream status("/proc/" + std::to_string(fanoutd_.pid()) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
    }
    return -1;
  }

  // Whether `got` holds one whole response with a Content-Length body.
  static bool WholeResponse(const std::string& got) {
    const std::size_t end = got.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    const std::size_t cl = got.find("Content-Length: ");
    if (cl == std::string::npos || cl > end) return false;
    return got.size() >= end + 4 + std::stoul(got.substr(cl + 16));
  }
  static std::string Head(const std::string& got) { return got.substr(0, got.find("\r\n\r\n")); }
  static std::string Body(const std::string& got) {
    return got.substr(got.find("\r\n\r\n") + 4);
  }
};

TEST_F(BodySenderTest, LargeBodiesAreHandedOffAndKeepAliveConnectionsComeBack) {
  StartFanoutd();
  const std::string large = "/large.bin?size=3000000&cc=max-age%3D600";
  const std::string small = "/small.bin?size=5000&cc=max-age%3D600";
  const std::string large_body = OriginServer::OriginBody("/large.bin", 3000000);
  Store(large);
  Store(small);
  const int before = HandedOff();

  // One connection, one request at a time: a direct hit handed off, a
  // small direct hit, a range on the full path handed off, and a last
  // direct hit that closes.
  RawConnection conn(fanoutd_.port());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.Send("GET " + large + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got = conn.ReadUntil(WholeResponse);
  EXPECT_EQ(Head(got).rfind("HTTP/1.1 200", 0), 0u) << Head(got);
  EXPECT_TRUE(Body(got) == large_body);

  ASSERT_TRUE(conn.Send("GET " + small + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  got = conn.ReadUntil(WholeResponse);
  EXPECT_TRUE(Body(got) == OriginServer::OriginBody("/small.bin", 5000));

  ASSERT_TRUE(
      conn.Send("GET " + large + " HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-2000999\r\n\r\n"));
  got = conn.ReadUntil(WholeResponse);
  EXPECT_EQ(Head(got).rfind("HTTP/1.1 206", 0), 0u) << Head(got);
  EXPECT_TRUE(Body(got) == large_body.substr(1000, 2000000));

  ASSERT_TRUE(conn.Send("GET " + large + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  got = conn.ReadUntil([](const std::string&) { return false; });  // to the close
  EXPECT_NE(Head(got).find("Connection: close"), std::string::npos) << Head(got);
  EXPECT_TRUE(Body(got) == large_body) << "whole body, then the close";

  EXPECT_EQ(HandedOff(), before + 3);
  EXPECT_TRUE(WaitFor([&] { return Sending() == 0; }));
  // A handed-off hit answers with the full path's headers.
  Fetched direct = Get(large);
  Fetched full = Get(large, {{"If-None-Match", "\"other\""}});
  EXPECT_TRUE(direct.body == large_body);
  EXPECT_TRUE(full.body == large_body);
  direct.headers.erase("Age");
  full.headers.erase("Age");
  EXPECT_EQ(direct.headers, full.headers);
  const std::string log = fanoutd_.log();
  EXPECT_NE(log.find("\"GET " + large + "\" 200 HIT 3000000 bytes"), std::string::npos) << log;
}

TEST_F(BodySenderTest, PipelinedRequestsStayOnTheirThreadAndAreAnsweredInOrder) {
  StartFanoutd();
  const std::string large = "/p.bin?size=1000000&cc=max-age%3D600";
  Store(large);
  const int before = HandedOff();
  RawConnection conn(fanoutd_.port());
  // Two requests in one segment: the second is read ahead with the first,
  // so the first body cannot leave the thread that holds those bytes.
  ASSERT_TRUE(conn.Send("GET " + large + " HTTP/1.1\r\nHost: x\r\n\r\nGET " + large +
                        " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const std::string got = conn.ReadUntil([](const std::string&) { return false; });
  const std::string body = OriginServer::OriginBody("/p.bin", 1000000);
  const std::size_t first_end = got.find("\r\n\r\n") + 4 + body.size();
  ASSERT_GT(got.size(), first_end);
  EXPECT_TRUE(got.substr(got.find("\r\n\r\n") + 4, body.size()) == body);
  const std::string second = got.substr(first_end);
  EXPECT_EQ(second.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_TRUE(Body(second) == body);
  EXPECT_EQ(HandedOff(), before + 1) << "only the last one, with nothing read ahead";
}

TEST_F(BodySenderTest, ManyStalledClientsTakeNoThreadEachAndOthersAreServed) {
  // The clients read their rest one after another: however slow the
  // machine (sanitizers), none may be closed for stalling meanwhile.
  const std::string config = WriteConfig(R"({"client_timeout": 600, "routes": [
    {"prefix": "/", "upstream": "http://127.0.0.1:)" + std::to_string(origin_port_) + R"("}]})");
  StartFanoutd({"--config", config});
  const std::string target = "/many.bin?size=3000000&cc=max-age%3D600";
  const std::string body = OriginServer::OriginBody("/many.bin", 3000000);
  Store(target);
  constexpr int kClients = 50;
  std::vector<std::unique_ptr<RawConnection>> clients;
  std::vector<std::string> received(kClients);
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawConnection>(fanoutd_.port(), 16 * 1024));
    ASSERT_TRUE(clients.back()->Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    received[static_cast<std::size_t>(i)] = clients.back()->ReadUntil(
        [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; });
  }
  // Every client has its head and stopped reading: the sender holds all
  // of their bodies, on a few threads (one per connection would be 50+).
  ASSERT_TRUE(WaitFor([&] { return Sending() == kClients; }));
  EXPECT_LT(Threads(), 30);
  // Another client is answered meanwhile.
  Fetched probe = Get("/probe?size=100");
  EXPECT_EQ(probe.status, 200);
  EXPECT_TRUE(probe.transfer_ok);
  // Each reads the rest: every byte, in order.
  for (int i = 0; i < kClients; ++i) {
    std::string& got = received[static_cast<std::size_t>(i)];
    got += clients[static_cast<std::size_t>(i)]->ReadUntil(
        [&](const std::string& more) { return got.size() + more.size() >= got.find("\r\n\r\n") + 4 + body.size(); });
    EXPECT_TRUE(Body(got) == body) << "client " << i;
  }
  EXPECT_TRUE(WaitFor([&] { return Sending() == 0; }));
}

TEST_F(BodySenderTest, ReadersParkedAtTheFrontierGetEveryByteWhenTheFetchGoesOn) {
  StartFanoutd();
  const std::string target = "/held.bin?size=3000000&hold_at=1000000";
  constexpr int kClients = 8;
  std::vector<std::thread> threads;
  std::vector<Fetched> results(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] { results[static_cast<std::size_t>(i)] = Get(target); });
  }
  // The miss and every join wait at the frontier, in the sender.
  ASSERT_TRUE(WaitFor([&] { return Sending() == kClients; }));
  EXPECT_EQ(Joins(target), kClients - 1);
  origin_.Release("/held.bin");
  for (auto& t : threads) t.join();
  const std::string body = OriginServer::OriginBody("/held.bin", 3000000);
  for (const Fetched& f : results) {
    EXPECT_TRUE(f.transfer_ok);
    EXPECT_TRUE(f.body == body);
  }
  EXPECT_EQ(origin_.Count(target), 1);
}

TEST_F(BodySenderTest, AClientThatStopsReadingIsClosedAfterTheClientTimeout) {
  const std::string config = WriteConfig(R"({"client_timeout": 1, "routes": [
    {"prefix": "/", "upstream": "http://127.0.0.1:)" + std::to_string(origin_port_) + R"("}]})");
  StartFanoutd({"--config", config});
  const std::string target = "/stall.bin?size=8000000&cc=max-age%3D600";
  Store(target);
  RawConnection stalled(fanoutd_.port(), 16 * 1024);
  ASSERT_TRUE(stalled.Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got = stalled.ReadUntil(
      [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; });
  ASSERT_TRUE(WaitFor([&] { return Sending() == 1; }));
  // The socket fills, the client takes nothing: closed after 1 s.
  ASSERT_TRUE(WaitFor([&] { return Sending() == 0; }));
  got += stalled.ReadUntil([](const std::string&) { return false; });
  EXPECT_LT(Body(got).size(), 8000000u) << "cut, never a whole body";
  EXPECT_TRUE(WaitFor([&] {
    return fanoutd_.log().find("client stopped reading") != std::string::npos;
  })) << fanoutd_.log();
}

TEST_F(BodySenderTest, IdleKeepAliveConnectionsWaitWithoutAThreadAndAreAnsweredThere) {
  StartFanoutd();
  const std::string target = "/idle.bin?size=3000&cc=max-age%3D600";
  const std::string body = OriginServer::OriginBody("/idle.bin", 3000);
  Store(target);
  constexpr int kClients = 60;
  std::vector<std::unique_ptr<RawConnection>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawConnection>(fanoutd_.port()));
    ASSERT_TRUE(clients.back()->Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE(Body(clients.back()->ReadUntil(WholeResponse)) == body);
  }
  // All 60 wait for their next request in the loops, not on threads.
  ASSERT_TRUE(WaitFor([&] { return Idle() == kClients; }));
  EXPECT_LT(Threads(), 30);
  const int direct_before = Stats()["direct_hits"].get<int>();
  // Their next requests are answered from the loops, each in order.
  for (int round = 0; round < 2; ++round) {
    for (auto& c : clients) {
      ASSERT_TRUE(c->Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    for (auto& c : clients) {
      const std::string got = c->ReadUntil(WholeResponse);
      EXPECT_EQ(Head(got).rfind("HTTP/1.1 200", 0), 0u) << Head(got);
      EXPECT_TRUE(Body(got) == body);
    }
  }
  EXPECT_EQ(Stats()["direct_hits"].get<int>(), direct_before + 2 * kClients);
  // A request the loop does not answer (a range) goes to a thread, and the
  // connection comes back to wait again.
  ASSERT_TRUE(clients[0]->Send("GET " + target + " HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n"));
  const std::string ranged = clients[0]->ReadUntil(WholeResponse);
  EXPECT_EQ(Head(ranged).rfind("HTTP/1.1 206", 0), 0u) << Head(ranged);
  EXPECT_EQ(Body(ranged), body.substr(0, 10));
  EXPECT_TRUE(WaitFor([&] { return Idle() == kClients; }));
  // Idle past the keep-alive timeout (5 s): closed.
  ASSERT_TRUE(WaitFor([&] { return Idle() == 0; }));
  for (auto& c : clients) EXPECT_EQ(c->ReadUntil([](const std::string&) { return false; }), "");
}

TEST_F(BodySenderTest, EveryKindOfRequestOnAParkedConnectionIsAnswered) {
  StartFanoutd();
  const std::string hit = "/kinds.bin?size=3000&cc=max-age%3D600";
  Store(hit);
  RawConnection conn(fanoutd_.port());
  ASSERT_TRUE(conn.connected());
  auto exchange = [&](const std::string& request) {
    EXPECT_TRUE(conn.Send(request));
    return conn.ReadUntil(WholeResponse);
  };
  // Each request arrives on a parked connection; the loop answers the
  // plain hit and passes the rest, with the bytes it read, to a thread.
  std::string got = exchange("GET " + hit + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(Body(got) == OriginServer::OriginBody("/kinds.bin", 3000));
  ASSERT_TRUE(WaitFor([&] { return Idle() == 1; }));
  const std::string upload(20000, 'u');
  got = exchange("POST /kinds-up?size=10 HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" +
                 upload);
  EXPECT_EQ(Head(got).rfind("HTTP/1.1 200", 0), 0u) << Head(got);
  EXPECT_NE(Head(got).find("X-Origin-Body-Bytes: 20000"), std::string::npos) << Head(got);
  ASSERT_TRUE(WaitFor([&] { return Idle() == 1; }));
  // A HEAD answer ends with its head (its Content-Length is a GET's).
  EXPECT_TRUE(conn.Send("HEAD " + hit + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  got = conn.ReadUntil(
      [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(Head(got).rfind("HTTP/1.1 200", 0), 0u) << Head(got);
  ASSERT_TRUE(WaitFor([&] { return Idle() == 1; }));
  got = exchange("GET /kinds-miss?size=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(Head(got).find("X-Cache: MISS"), std::string::npos) << Head(got);
  EXPECT_TRUE(Body(got) == OriginServer::OriginBody("/kinds-miss", 5000));
  ASSERT_TRUE(WaitFor([&] { return Idle() == 1; }));
  // A client that closes while parked: the connection is let go.
  conn.Close();
  EXPECT_TRUE(WaitFor([&] { return Idle() == 0; }));
}

}  // namespace
}  // namespace fanout
