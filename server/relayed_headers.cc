#include "server/relayed_headers.h"

#include <algorithm>

#include "core/header_text.h"
#include "server/router.h"

namespace fanout {
namespace {

// A targeted field on the route's list that aims at fanoutd alone. RFC
// 9213 defines CDN-Cache-Control for every CDN, and CDNs are chained: it
// goes on, so that caches downstream apply the same policy. Any other name
// on the list (Fanout-Cache-Control, an operator's own) is fanoutd's.
bool IsFieldForThisCache(const Route& route, const std::string& name) {
  if (EqualsIgnoreCase(name, "CDN-Cache-Control")) return false;
  return std::any_of(route.targeted_cache_control.begin(), route.targeted_cache_control.end(),
                     [&](const std::string& field) { return EqualsIgnoreCase(field, name); });
}

bool IsRedirectField(const std::string& name) {
  return EqualsIgnoreCase(name, "Location") || EqualsIgnoreCase(name, "Content-Location");
}

}  // namespace

bool NeedsRelayChanges(const Route& route, const HeaderList& headers) {
  for (const auto& [name, value] : headers) {
    if (IsFieldForThisCache(route, name)) return true;
    if (route.rewrite_redirects && IsRedirectField(name) && Router::ClientTarget(route, value)) {
      return true;
    }
  }
  return false;
}

void RelayedForClients(const Route& route, HeaderList* headers) {
  std::erase_if(*headers, [&](const auto& field) { return IsFieldForThisCache(route, field.first); });
  if (!route.rewrite_redirects) return;
  for (auto& [name, value] : *headers) {
    if (!IsRedirectField(name)) continue;
    if (auto client = Router::ClientTarget(route, value)) value = std::move(*client);
  }
}

}  // namespace fanout
