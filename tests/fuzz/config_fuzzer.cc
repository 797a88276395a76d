// Fuzzes ParseConfig and ValidateConfig (config/config_loader) and the
// unit parsers under them (config/units).
//
// Input: a config file's JSON text. Invariants: nothing throws (the config
// edge's catch-all never fires); an error is kInvalidArgument and names a
// key, or says the text is not JSON (or not an object); an accepted config
// has every numeric setting within its documented bounds. The input is also
// given to ParseSize and ParseDuration, which never return a negative or
// out-of-range value.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config_loader.h"
#include "config/units.h"
#include "tests/fuzz/fuzz_check.h"

namespace fanout {
namespace {

using std::chrono::hours;

void CheckRouteDuration(const std::optional<std::chrono::seconds>& d) {
  if (d) FUZZ_CHECK(d->count() >= 1 && *d <= hours(24 * 3650));
}

}  // namespace
}  // namespace fanout

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fanout;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (const auto bytes = ParseSize(text)) FUZZ_CHECK(*bytes <= kMaxParsedSize);
  if (const auto d = ParseDuration(text)) {
    FUZZ_CHECK(d->count() >= 0 && *d <= kMaxParsedDuration);
  }

  Config config;
  const Status st = ParseConfig(text, &config);
  if (!st.ok()) {
    FUZZ_CHECK(st.code() == Status::Code::kInvalidArgument);
    FUZZ_CHECK(!st.message().empty());
    // Never the catch-all's message, unless a key's name only looks like it
    // (an unknown key, or one whose path the message names).
    FUZZ_CHECK(st.message().rfind("cannot read the config: ", 0) != 0 ||
               st.message().find(": unknown key (known keys here: ") != std::string::npos ||
               text.find("cannot read the config: ") != std::string_view::npos);
    return 0;
  }
  FUZZ_CHECK(config.listen_port >= 0 && config.listen_port <= 65535);
  FUZZ_CHECK(config.admin_port >= 0 && config.admin_port <= 65535);
  FUZZ_CHECK(config.max_connections >= 1 && config.max_connections <= 100000);
  for (const auto d : {config.client_timeout, config.upstream_connect_timeout,
                       config.upstream_read_timeout}) {
    FUZZ_CHECK(d.count() >= 1 && d <= hours(24));
  }
  for (const std::uint64_t s : {config.max_request_body, config.max_cache_size}) {
    FUZZ_CHECK(s >= 1 && s <= kMaxParsedSize);
  }
  FUZZ_CHECK(config.max_object_size <= kMaxParsedSize);
  for (const Route& r : config.routes) {
    FUZZ_CHECK(!r.prefix.empty() && r.prefix[0] == '/');
    FUZZ_CHECK(r.upstream.port >= 1 && r.upstream.port <= 65535);
    FUZZ_CHECK(!r.upstream.host.empty());
    CheckRouteDuration(r.default_ttl);
    CheckRouteDuration(r.stale_while_revalidate);
    CheckRouteDuration(r.stale_if_error);
  }
  const Status valid = ValidateConfig(config);
  if (!valid.ok()) FUZZ_CHECK(valid.code() == Status::Code::kInvalidArgument);
  return 0;
}
