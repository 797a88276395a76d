#include "server/relayed_headers.h"

#include <algorithm>

#include "core/header_text.h"
#include "server/router.h"

namespace fanout {
namespace {

bool IsTargetedField(const Route& route, const std::string& name) {
  return std::any_of(route.targeted_cache_control.begin(), route.targeted_cache_control.end(),
                     [&](const std::string& field) { return EqualsIgnoreCase(field, name); });
}

bool IsRedirectField(const std::string& name) {
  return EqualsIgnoreCase(name, "Location") || EqualsIgnoreCase(name, "Content-Location");
}

}  // namespace

bool NeedsRelayChanges(const Route& route, const HeaderList& headers) {
  for (const auto& [name, value] : headers) {
    if (IsTargetedField(route, name)) return true;
    if (route.rewrite_redirects && IsRedirectField(name) && Router::ClientTarget(route, value)) {
      return true;
    }
  }
  return false;
}

void RelayedForClients(const Route& route, HeaderList* headers) {
  std::erase_if(*headers, [&](const auto& field) { return IsTargetedField(route, field.first); });
  if (!route.rewrite_redirects) return;
  for (auto& [name, value] : *headers) {
    if (!IsRedirectField(name)) continue;
    if (auto client = Router::ClientTarget(route, value)) value = std::move(*client);
  }
}

}  // namespace fanout
