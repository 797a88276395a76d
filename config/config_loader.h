// Loading and validating fanoutd's JSON config.
//
// Validation is strict: an unknown key, a wrong type, a bad URL or an
// impossible value is an error whose message starts with the key path
// ("routes[1].upstream: ..."). Nothing here throws.

#ifndef FANOUT_CONFIG_CONFIG_LOADER_H_
#define FANOUT_CONFIG_CONFIG_LOADER_H_

#include <string>
#include <string_view>

#include "config/config.h"
#include "core/status.h"

namespace fanout {

// Parses JSON text into *config, starting from the defaults already in it.
// kInvalidArgument with "<key path>: <problem>" on any error.
Status ParseConfig(std::string_view json_text, Config* config);

// Reads and parses a file. kNotFound / kIOError if it cannot be read.
Status LoadConfigFile(const std::string& path, Config* config);

// Parses "host:port" / "[v6]:port" into the config's listen fields.
Status ParseListen(std::string_view text, Config* config);
// Likewise for the admin interface; "" turns it off.
Status ParseAdminListen(std::string_view text, Config* config);
// "host:port" / "[v6]:port"; `key` names the setting in errors.
Status ParseHostPort(std::string_view text, const std::string& key, std::string* host,
                     int* port);

// Checks the cross-field rules (at least one route, no duplicate prefixes).
Status ValidateConfig(const Config& config);

// Builds a route from a prefix and an upstream URL text; `what` names the
// key in errors.
Status MakeRoute(std::string_view prefix, std::string_view upstream,
                 std::string_view what, Route* route);

}  // namespace fanout

#endif  // FANOUT_CONFIG_CONFIG_LOADER_H_
