// fanoutd: the fan-out caching daemon. Parses the command line and config,
// sets up logging, runs the server until SIGINT or SIGTERM.

#include <signal.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "config/config_loader.h"
#include "config/units.h"
#include "server/fanout_server.h"
#include "server/log_files.h"

#ifndef FANOUT_VERSION
#define FANOUT_VERSION "0.0.0"
#endif

namespace {

// Exit codes: 0 fine, 1 runtime failure (cannot listen, cache dir), 2 bad
// command line or config.
constexpr int kExitRuntime = 1;
constexpr int kExitConfig = 2;

int ConfigError(const std::string& message) {
  std::fprintf(stderr, "fanoutd: config error: %s\n", message.c_str());
  return kExitConfig;
}

// SIGHUP: reads the config again and applies it, or keeps the running one
// (logged) if the new one is invalid or changes what needs a restart.
template <typename Load>
void Reload(const Load& load_config, fanout::FanoutServer& server, fanout::Config* running) {
  fanout::Config next;
  if (fanout::Status st = load_config(&next); !st.ok()) {
    spdlog::error("signal SIGHUP: config not reloaded, the running one stays: {}", st.message());
    return;
  }
  if (fanout::Status st = server.Reload(next); !st.ok()) {
    spdlog::error("signal SIGHUP: config not reloaded, the running one stays: {}", st.message());
    return;
  }
  spdlog::set_level(spdlog::level::from_str(next.log_level));
  *running = std::move(next);
  spdlog::info("signal SIGHUP: config reloaded ({} routes, log level {})",
               running->routes.size(), running->log_level);
  for (const auto& r : running->routes) {
    spdlog::info("route {} -> {}", r.prefix, r.upstream.ToString());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fanoutd: fetch each URL once, stream it to every client at once"};
  std::string config_path, listen, cache_dir, log_level, upstream, admin_listen, grace;
  bool check_config = false, version = false;
  app.add_option("-c,--config", config_path, "JSON config file");
  app.add_option("--listen", listen, "HOST:PORT to listen on (overrides the config)");
  app.add_option("--cache-dir", cache_dir, "cache directory (overrides the config)");
  auto* admin_option = app.add_option(
      "--admin-listen", admin_listen,
      "HOST:PORT of the admin interface, \"\" for none (overrides the config)");
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error, critical or off");
  app.add_option("--upstream", upstream,
                 "serve everything from this origin URL (a single route \"/\")");
  app.add_option("--shutdown-grace", grace,
                 "time responses under way get on SIGTERM, e.g. 30s (overrides the config)");
  app.add_flag("--check-config", check_config, "validate the configuration and exit");
  app.add_flag("--version", version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitConfig;
  }
  if (version) {
    std::printf("fanoutd %s\n", FANOUT_VERSION);
    return 0;
  }

  // The config file, then the command line over it; run again on SIGHUP.
  auto load_config = [&](fanout::Config* out) -> fanout::Status {
    fanout::Config config;
    if (!config_path.empty()) {
      fanout::Status st = fanout::LoadConfigFile(config_path, &config);
      if (!st.ok()) return st;
    }
    if (!listen.empty()) {
      fanout::Status st = fanout::ParseListen(listen, &config);
      if (!st.ok()) return fanout::Status::InvalidArgument("--" + st.message());
    }
    if (!cache_dir.empty()) config.cache_dir = cache_dir;
    if (admin_option->count() > 0) {
      fanout::Status st = fanout::ParseAdminListen(admin_listen, &config);
      if (!st.ok()) return fanout::Status::InvalidArgument("--" + st.message());
    }
    if (!log_level.empty()) {
      if (spdlog::level::from_str(log_level) == spdlog::level::off && log_level != "off") {
        return fanout::Status::InvalidArgument("--log-level: unknown level '" + log_level + "'");
      }
      config.log_level = log_level;
    }
    if (!grace.empty()) {
      const auto d = fanout::ParseDuration(grace);
      if (!d || d->count() < 1 || *d > std::chrono::hours(24)) {
        return fanout::Status::InvalidArgument(
            "--shutdown-grace: expected a duration from 1ms to 1d, got '" + grace + "'");
      }
      config.shutdown_grace = *d;
    }
    if (!upstream.empty()) {
      fanout::Route route;
      fanout::Status st = fanout::MakeRoute("/", upstream, "--upstream", &route);
      if (!st.ok()) return st;
      config.routes = {route};
    }
    if (fanout::Status st = fanout::ValidateConfig(config); !st.ok()) return st;
    *out = std::move(config);
    return fanout::Status::Ok();
  };
  fanout::Config config;
  if (fanout::Status st = load_config(&config); !st.ok()) return ConfigError(st.message());
  if (check_config) {
    std::printf("fanoutd: configuration OK (%zu routes%s)\n", config.routes.size(),
                config.forward_proxy.enabled ? ", forward proxy" : "");
    return 0;
  }

  std::unique_ptr<fanout::LogFiles> log_files;
  if (fanout::Status st = fanout::LogFiles::Open(config.log_file, config.access_log_file,
                                                 &log_files);
      !st.ok()) {
    std::fprintf(stderr, "fanoutd: cannot start: %s\n", st.message().c_str());
    return kExitRuntime;
  }
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::flush_on(spdlog::level::info);

  // Signals are taken by one thread with sigwait, so no handler runs on a
  // thread holding a lock.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A file-size limit (ulimit -f) is a write error like a full disk (EFBIG,
  // handled), not a reason to die.
  signal(SIGXFSZ, SIG_IGN);

  fanout::FanoutServer server(config);
  if (fanout::Status st = server.Start(); !st.ok()) {
    spdlog::critical("cannot start: {}", st.ToString());
    return kExitRuntime;
  }
  if (server.admin_port() > 0) {
    spdlog::info("admin interface listening on {}:{}", config.admin_host, server.admin_port());
  }
  spdlog::info("fanoutd {} listening on {}:{}", FANOUT_VERSION, config.listen_host,
               server.port());
  spdlog::info("cache dir {}; max_connections {}; upstream timeouts connect {}ms read {}ms "
               "stall {}; resume attempts {}",
               config.cache_dir, config.max_connections,
               config.upstream_connect_timeout.count(), config.upstream_read_timeout.count(),
               config.upstream_stall_timeout.count() > 0
                   ? std::to_string(config.upstream_stall_timeout.count()) + "ms"
                   : std::string("off"),
               config.upstream_resume_attempts);
  for (const auto& r : config.routes) {
    spdlog::info("route {} -> {}{}{}", r.prefix, r.upstream.ToString(),
                 r.host_override.empty() ? "" : " (Host: " + r.host_override + ")",
                 r.tls_ca_file.empty() ? "" : " (CA file " + r.tls_ca_file + ")");
    if (!r.tls_verify) {
      spdlog::warn("route {}: tls_verify is false: the certificate of {} is not checked "
                   "(anyone on the path can impersonate it)",
                   r.prefix, r.upstream.ToString());
    }
  }
  if (config.forward_proxy.enabled) {
    std::string allow;
    for (const auto& p : config.forward_proxy.allow) allow += (allow.empty() ? "" : ", ") + p.text();
    spdlog::info("forward proxy for {}; CONNECT {}", allow,
                 config.forward_proxy.connect ? "tunnelled to those hosts" : "refused (405)");
  }
  std::atomic<bool> run_ended{false};
  std::thread signal_waiter([&] {
    int sig = 0;
    for (;;) {
      sigwait(&signals, &sig);
      if (run_ended.load()) return;
      if (sig == SIGUSR1) {
        const fanout::Status reopened = log_files->Reopen();
        if (reopened.ok()) {
          spdlog::info("signal SIGUSR1: log files reopened");
        } else {
          spdlog::error("signal SIGUSR1: {}", reopened.message());
        }
        continue;
      }
      if (sig == SIGHUP) {
        Reload(load_config, server, &config);
        continue;
      }
      break;
    }
    // SIGTERM / SIGINT: drain, then stop; a second one stops at once.
    spdlog::info("signal {}: draining (responses under way get up to {} ms; a second signal "
                 "stops at once)",
                 sig, config.shutdown_grace.count());
    server.Drain();
    const auto deadline = std::chrono::steady_clock::now() + config.shutdown_grace;
    const timespec slice{0, 50 * 1000 * 1000};
    std::size_t left = 0;
    while ((left = server.InFlight()) > 0 && std::chrono::steady_clock::now() < deadline) {
      const int again = sigtimedwait(&signals, nullptr, &slice);
      if (again == SIGTERM || again == SIGINT) {
        spdlog::info("signal {} again: stopping now", again);
        break;
      }
    }
    if (left > 0) spdlog::warn("stopping with {} responses still under way", left);
    server.Stop();
  });
  const bool ran = server.Run();
  if (!ran) spdlog::critical("server stopped with an error");
  // Wake the signal thread if Run ended for another reason.
  run_ended.store(true);
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  spdlog::info("fanoutd stopped");
  return ran ? 0 : kExitRuntime;
}
