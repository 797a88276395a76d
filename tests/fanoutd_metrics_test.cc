// GET /metrics and the logs, against the real binary: exact counter values
// after known traffic, an exposition that parses as Prometheus text (by the
// small parser below), the JSON access log, log.file and SIGUSR1 reopening
// it after a rotation.

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/fanoutd_fixture.h"

namespace fanout {
namespace {

using ::fanout::testing::FanoutdTest;
using ::fanout::testing::Fetched;
using ::fanout::testing::WaitFor;
using namespace std::chrono_literals;

// A parsed exposition: sample "name{labels}" -> value. Parsing fails the
// test on anything the text format does not allow: a sample of a family
// with no TYPE, a bad value, a histogram whose buckets are not cumulative
// or whose +Inf bucket is not its count.
class Exposition {
 public:
  explicit Exposition(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    std::map<std::string, std::string> types;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      if (line.rfind("# TYPE ", 0) == 0) {
        std::istringstream t(line.substr(7));
        std::string name, type;
        t >> name >> type;
        EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
        EXPECT_EQ(types.count(name), 0u) << "TYPE twice: " << line;
        types[name] = type;
        continue;
      }
      if (line.rfind("# HELP ", 0) == 0) continue;
      EXPECT_NE(line[0], '#') << "unknown comment: " << line;
      const std::size_t space = line.rfind(' ');
      if (space == std::string::npos || line[0] == '#') {
        ADD_FAILURE() << "not a sample: " << line;
        continue;
      }
      const std::string series = line.substr(0, space);
      const std::string name = series.substr(0, series.find('{'));
      std::string family = name;
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s = suffix;
        if (!types.count(family) && family.size() > s.size() &&
            family.compare(family.size() - s.size(), s.size(), s) == 0) {
          family = family.substr(0, family.size() - s.size());
        }
      }
      EXPECT_TRUE(types.count(family)) << "no TYPE for " << line;
      std::size_t used = 0;
      const double value = std::stod(line.substr(space + 1), &used);
      EXPECT_EQ(used, line.size() - space - 1) << line;
      EXPECT_EQ(values_.count(series), 0u) << "sample twice: " << line;
      values_[series] = value;
      if (types[family] == "histogram" && name == family + "_bucket") {
        EXPECT_GE(value, last_bucket_[family]) << "buckets not cumulative: " << line;
        last_bucket_[family] = value;
      }
    }
    for (const auto& [family, type] : types) {
      if (type != "histogram") continue;
      EXPECT_EQ(Value(family + "_bucket{le=\"+Inf\"}"), Value(family + "_count")) << family;
    }
  }

  // The sample's value; fails the test and returns -1 if there is none.
  double Value(const std::string& series) const {
    auto it = values_.find(series);
    EXPECT_NE(it, values_.end()) << "no sample " << series;
    return it == values_.end() ? -1 : it->second;
  }

 private:
  std::map<std::string, double> values_;
  std::map<std::string, double> last_bucket_;
};

class MetricsTest : public FanoutdTest {
 protected:
  Exposition Scrape() {
    auto res = Admin().Get("/metrics");
    EXPECT_TRUE(res && res->status == 200);
    if (!res) return Exposition("");
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    return Exposition(res->body);
  }
  double Metric(const std::string& series) { return Scrape().Value(series); }
  std::string Route(const std::string& prefix, int port) {
    return "{\"prefix\": \"" + prefix + "\", \"upstream\": \"http://127.0.0.1:" +
           std::to_string(port) + "\"}";
  }
};

TEST_F(MetricsTest, CountsMissHitRangeAndBytesExactly) {
  StartFanoutd();
  const std::string target = "/m.bin?size=1000&cc=max-age%3D600";
  ASSERT_EQ(Get(target).x_cache, "MISS");
  ASSERT_TRUE(WaitFor([&] { return Metric("fanout_entries") == 1; }));
  ASSERT_EQ(Get(target).x_cache, "HIT");  // plain: answered on the direct path
  const Fetched range = Get(target, {{"Range", "bytes=0-99"}});
  ASSERT_EQ(range.status, 206);
  ASSERT_EQ(range.x_cache, "HIT");

  const Exposition m = Scrape();
  EXPECT_EQ(m.Value("fanout_requests_total{cache=\"MISS\",code=\"2xx\"}"), 1);
  EXPECT_EQ(m.Value("fanout_requests_total{cache=\"HIT\",code=\"2xx\"}"), 2);
  EXPECT_EQ(m.Value("fanout_requests_total{cache=\"JOIN\",code=\"2xx\"}"), 0);
  EXPECT_EQ(m.Value("fanout_requests_total{cache=\"MISS\",code=\"5xx\"}"), 0);
  EXPECT_EQ(m.Value("fanout_direct_hits_total"), 1);
  EXPECT_EQ(m.Value("fanout_client_bytes_total"), 2100);
  EXPECT_EQ(m.Value("fanout_upstream_bytes_total"), 1000);
  EXPECT_EQ(m.Value("fanout_fetches_started_total"), 1);
  EXPECT_EQ(m.Value("fanout_fetches_completed_total"), 1);
  EXPECT_EQ(m.Value("fanout_fetches_failed_total{cause=\"connect\"}"), 0);
  EXPECT_EQ(m.Value("fanout_fetches_in_flight"), 0);
  EXPECT_EQ(m.Value("fanout_entries"), 1);
  EXPECT_EQ(m.Value("fanout_stored_bytes"), 1000);
  EXPECT_EQ(m.Value("fanout_request_duration_seconds_count"), 3);
  EXPECT_EQ(m.Value("fanout_request_first_byte_seconds_count"), 3);
  EXPECT_EQ(m.Value("fanout_upstream_connect_seconds_count"), 1);
  EXPECT_EQ(m.Value("fanout_upstream_first_byte_seconds_count"), 1);
  EXPECT_GT(m.Value("fanout_request_duration_seconds_sum"), 0);
  EXPECT_EQ(m.Value("fanout_evictions_total"), 0);
}

TEST_F(MetricsTest, CountsFailedFetchesByCauseAndRevalidationsByResult) {
  const int dead = ::fanout::testing::DeadPort();
  StartFanoutd({"--config", WriteConfig("{\"routes\": [" + Route("/", origin_port_) + ", " +
                                        Route("/dead", dead) + "]}")});
  EXPECT_EQ(Get("/dead/x").status, 502);
  EXPECT_EQ(Get("/dead/y").status, 502);
  // Stored with max-age=0: the second request revalidates (304).
  const std::string target = "/r.bin?size=500&cc=max-age%3D0";
  ASSERT_EQ(Get(target).status, 200);
  ASSERT_TRUE(WaitFor([&] { return Metric("fanout_entries") == 1; }));
  ASSERT_EQ(Get(target).x_cache, "REVALIDATE");
  // The fetch counts once its 304 is handled, after the client's answer.
  ASSERT_TRUE(WaitFor([&] { return Metric("fanout_fetches_in_flight") == 0; }));

  const Exposition m = Scrape();
  EXPECT_EQ(m.Value("fanout_fetches_failed_total{cause=\"connect\"}"), 2);
  EXPECT_EQ(m.Value("fanout_fetches_failed_total{cause=\"timeout\"}"), 0);
  EXPECT_EQ(m.Value("fanout_requests_total{cache=\"MISS\",code=\"5xx\"}"), 2);
  EXPECT_EQ(m.Value("fanout_fetches_started_total"), 4);
  EXPECT_EQ(m.Value("fanout_fetches_completed_total"), 2);
  EXPECT_EQ(m.Value("fanout_revalidations_total{result=\"not_modified\"}"), 1);
  EXPECT_EQ(m.Value("fanout_revalidations_total{result=\"modified\"}"), 0);
  EXPECT_EQ(m.Value("fanout_upstream_bytes_total"), 500);
}

TEST_F(MetricsTest, CountsEvictionsAndTheirBytes) {
  StartFanoutd({"--config",
                WriteConfig("{\"routes\": [" + Route("/", origin_port_) +
                            "], \"max_cache_size\": 3000}"),
                "--log-level", "debug"});
  for (int i = 0; i < 4; ++i) {
    const std::string target = "/e" + std::to_string(i) + ".bin?size=1000&cc=max-age%3D600";
    ASSERT_TRUE(Get(target).transfer_ok);
    // Stored one after another, so the least recently used go first.
    ASSERT_TRUE(WaitFor([&] { return Metric("fanout_fetches_in_flight") == 0; }));
  }
  // 4000 bytes > 3000: evicted down to 90% (2700), two entries.
  ASSERT_TRUE(WaitFor([&] { return Metric("fanout_evictions_total") == 2; }));
  const Exposition m = Scrape();
  EXPECT_EQ(m.Value("fanout_evicted_bytes_total"), 2000);
  EXPECT_EQ(m.Value("fanout_entries"), 2);
  EXPECT_EQ(m.Value("fanout_stored_bytes"), 2000);
  EXPECT_NE(fanoutd_.log().find("evicted " + Key("/e0.bin?size=1000&cc=max-age%3D600")),
            std::string::npos)
      << "each eviction is logged at debug";
}

TEST_F(MetricsTest, ShowsTheFetchInFlightAndItsReaders) {
  StartFanoutd();
  const std::string path = "/held.bin";
  const std::string target = path + "?size=2000000&hold_at=1000000&cc=max-age%3D600";
  std::vector<std::thread> clients;
  std::vector<Fetched> got(3);
  for (int i = 0; i < 3; ++i) clients.emplace_back([&, i] { got[i] = Get(target); });
  ASSERT_TRUE(WaitFor([&] { return origin_.Holding(path) == 1; }));
  ASSERT_TRUE(WaitFor([&] { return Metric("fanout_readers_attached") == 3; }));
  const Exposition m = Scrape();
  EXPECT_EQ(m.Value("fanout_fetches_in_flight"), 1);
  EXPECT_GE(m.Value("fanout_connections_open"), 3);
  EXPECT_GE(m.Value("fanout_responses_in_flight"), 3);
  origin_.Release(path);
  for (auto& c : clients) c.join();
  for (const Fetched& f : got) {
    EXPECT_TRUE(f.transfer_ok);
    EXPECT_TRUE(f.body == OriginServer::OriginBody(path, 2000000));
  }
  ASSERT_TRUE(WaitFor([&] { return Metric("fanout_readers_attached") == 0; }));
  EXPECT_EQ(Metric("fanout_requests_total{cache=\"MISS\",code=\"2xx\"}") +
                Metric("fanout_requests_total{cache=\"JOIN\",code=\"2xx\"}"),
            3);
}

class LogsTest : public FanoutdTest {
 protected:
  static std::vector<nlohmann::json> JsonLines(const std::string& text) {
    std::vector<nlohmann::json> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line[0] == '{') out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }
};

TEST_F(LogsTest, JsonAccessLogHasOneObjectPerRequest) {
  StartFanoutd({"--config",
                WriteConfig("{\"routes\": [{\"prefix\": \"/\", \"upstream\": \"http://127.0.0.1:" +
                            std::to_string(origin_port_) +
                            "\"}], \"log\": {\"access_format\": \"json\"}}")});
  const std::string target = "/j.bin?size=777&cc=max-age%3D600";
  ASSERT_EQ(Get(target).x_cache, "MISS");
  ASSERT_TRUE(WaitFor([&] { return JsonLines(fanoutd_.log()).size() == 1; }));
  WaitUntilHit(target);  // a HEAD: a line of its own
  ASSERT_EQ(Get(target, {}, 100).status, 200);  // leaves after 100 bytes? (777 fit in one read)
  ASSERT_TRUE(WaitFor([&] { return JsonLines(fanoutd_.log()).size() >= 3; }));
  const auto lines = JsonLines(fanoutd_.log());
  const nlohmann::json& miss = lines.front();
  EXPECT_EQ(miss["method"], "GET");
  EXPECT_EQ(miss["target"], target);
  EXPECT_EQ(miss["status"], 200);
  EXPECT_EQ(miss["cache"], "MISS");
  EXPECT_EQ(miss["bytes"], 777);
  EXPECT_EQ(miss["client"], "127.0.0.1");
  EXPECT_EQ(miss["upstream_status"], 200);
  EXPECT_TRUE(miss["upstream_ms"].is_number());
  EXPECT_TRUE(miss["duration_ms"].is_number());
  EXPECT_TRUE(miss["ttfb_ms"].is_number());
  EXPECT_LE(miss["ttfb_ms"].get<double>(), miss["duration_ms"].get<double>());
  const std::string time = miss["time"];
  EXPECT_EQ(time.size(), 24u) << time;  // 2026-12-01T10:00:00.123Z
  EXPECT_EQ(time.back(), 'Z');
  const nlohmann::json& hit = lines.back();
  EXPECT_EQ(hit["cache"], "HIT");
  EXPECT_FALSE(hit.contains("upstream_status")) << hit.dump();
}

TEST_F(LogsTest, LogFileIsReopenedOnSigusr1AfterARotation) {
  const std::string log = dir_.path() + "/fanoutd.log";
  const std::string access = dir_.path() + "/access.log";
  StartFanoutd({"--config",
                WriteConfig("{\"routes\": [{\"prefix\": \"/\", \"upstream\": \"http://127.0.0.1:" +
                            std::to_string(origin_port_) + "\"}], \"log\": {\"file\": \"" + log +
                            "\", \"access_file\": \"" + access + "\"}}")});
  ASSERT_EQ(Get("/a.bin?size=10").status, 200);
  ASSERT_TRUE(WaitFor([&] {
    return ::fanout::testing::ReadFile(access).find("/a.bin") != std::string::npos;
  }));
  ASSERT_TRUE(WaitFor([&] {
    return ::fanout::testing::ReadFile(log).find("fetch done") != std::string::npos;
  }));
  EXPECT_EQ(::fanout::testing::ReadFile(log).find("access "), std::string::npos)
      << "the access log has its own file";
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_EQ(std::rename(access.c_str(), (access + ".1").c_str()), 0);
  ASSERT_EQ(::kill(fanoutd_.pid(), SIGUSR1), 0);
  ASSERT_TRUE(WaitFor([&] {
    return ::fanout::testing::ReadFile(log).find("log files reopened") != std::string::npos;
  }));
  ASSERT_EQ(Get("/b.bin?size=10").status, 200);
  ASSERT_TRUE(WaitFor([&] {
    return ::fanout::testing::ReadFile(access).find("/b.bin") != std::string::npos;
  }));
  EXPECT_EQ(::fanout::testing::ReadFile(access).find("/a.bin"), std::string::npos);
  EXPECT_EQ(::fanout::testing::ReadFile(access + ".1").find("/b.bin"), std::string::npos);
  EXPECT_EQ(fanoutd_.Stop(), 0);
}

TEST_F(LogsTest, BadLogSettingsAreNamedAndStopTheStart) {
  const std::string config = WriteConfig(
      "{\"routes\": [{\"prefix\": \"/\", \"upstream\": \"http://127.0.0.1:1\"}], "
      "\"log\": {\"access_format\": \"xml\"}}");
  const auto bad_format = ::fanout::testing::RunFanoutdToExit({"--config", config, "--check-config"}, dir_.path());
  EXPECT_EQ(bad_format.exit_code, 2);
  EXPECT_NE(bad_format.output.find("log.access_format: unknown format 'xml'"), std::string::npos)
      << bad_format.output;
  const std::string missing_dir = WriteConfig(
      "{\"routes\": [{\"prefix\": \"/\", \"upstream\": \"http://127.0.0.1:1\"}], "
      "\"listen\": \"127.0.0.1:0\", \"admin_listen\": \"\", \"cache_dir\": \"" +
      dir_.path() + "/c\", \"log\": {\"file\": \"" + dir_.path() + "/no/such/dir/f.log\"}}");
  const auto no_file = ::fanout::testing::RunFanoutdToExit({"--config", missing_dir}, dir_.path());
  EXPECT_EQ(no_file.exit_code, 1);
  EXPECT_NE(no_file.output.find("cannot open log file " + dir_.path() +
                                "/no/such/dir/f.log: No such file or directory"),
            std::string::npos)
      << no_file.output;
}

}  // namespace
}  // namespace fanout
