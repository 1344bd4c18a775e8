// A 502/504 that a server caused names it: in the access log (the
// exchange's `blamed`) and in a warning on stderr saying what it did,
// rate-limited per worker (the suppressed lines are counted in the next).
#pragma once

#include <string_view>

#include <boost/system/error_code.hpp>

namespace sag::affinity {
class Server;
}

namespace sag::session {

struct Exchange;
struct WorkerContext;

// Thread: `worker`'s. `what`: what the server did ("no response", ...);
// `ec`, when set, is appended.
void blame_server(WorkerContext& worker, Exchange& x, const affinity::Server& server,
                  unsigned status, std::string_view what, const boost::system::error_code& ec);

}  // namespace sag::session
