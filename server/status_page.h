// The admin interface's live status page (GET /): one self-contained HTML
// document whose script polls GET /status.json twice a second and draws
// the fetches in flight (URL, bytes, length, a progress bar, the upstream
// rate from successive frontiers, readers attached), the recent requests,
// the totals by X-Cache and the cache fill. No reload, no outside assets.

#ifndef FANOUT_SERVER_STATUS_PAGE_H_
#define FANOUT_SERVER_STATUS_PAGE_H_

#include <string_view>

namespace fanout {

std::string_view StatusPageHtml();

}  // namespace fanout

#endif  // FANOUT_SERVER_STATUS_PAGE_H_
