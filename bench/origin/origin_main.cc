// fanout_origin: the project's demo and benchmark origin (see
// origin_server.h for what the query string controls).
//   fanout_origin [--listen 127.0.0.1:9000] [--files /prefix=DIR]

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdio>

#include "bench/origin/origin_server.h"

int main(int argc, char** argv) {
  CLI::App app{"fanout_origin: a generated-object HTTP origin for demos and benchmarks"};
  std::string listen = "127.0.0.1:9000";
  app.add_option("--listen", listen, "HOST:PORT");
  std::string files;
  app.add_option("--files", files,
                 "PREFIX=DIR: serve DIR's files under PREFIX (ETag, Last-Modified, no freshness)");
  CLI11_PARSE(app, argc, argv);
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "fanout_origin: --listen wants HOST:PORT\n");
    return 2;
  }
  const std::string host = listen.substr(0, colon);
  const int port = std::atoi(listen.c_str() + colon + 1);
  fanout::OriginServer origin;
  if (!files.empty()) {
    const auto eq = files.find('=');
    if (eq == std::string::npos || files[0] != '/') {
      std::fprintf(stderr, "fanout_origin: --files wants /PREFIX=DIR\n");
      return 2;
    }
    origin.ServeFiles(files.substr(0, eq), files.substr(eq + 1));
  }
  // Port 0 picks a free port: the line names the one bound.
  const int bound = origin.Start(host, port);
  if (bound < 0) {
    std::fprintf(stderr, "fanout_origin: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::printf("fanout_origin listening on %s:%d\n", host.c_str(), bound);
  std::fflush(stdout);
  for (;;) ::pause();  // serves on its own thread until a signal ends the process
}
