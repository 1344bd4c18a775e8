#include "session/forward/server_blame.h"

#include <string>

#include "affinity/model/server.h"
#include "session/exchange.h"
#include "session/generation.h"
#include "session/worker_context.h"

namespace sag::session {

void blame_server(WorkerContext& w, Exchange& x, const affinity::Server& server, unsigned status,
                  std::string_view what, const boost::system::error_code& ec) {
  x.blamed = server.name();
  uint64_t suppressed = 0;
  if (!w.warn || !w.server_warnings.allow(std::chrono::steady_clock::now(), &suppressed)) return;
  std::string line = "server ";
  line += x.backend ? std::string_view(x.backend->backend->name()) : std::string_view("-");
  line += '/';
  line += server.name();
  line += ": ";
  line += what;
  if (ec) {
    line += " (";
    line += ec.message();
    line += ')';
  }
  line += "; answered ";
  line += std::to_string(status);
  line += " to \"";
  line += x.method;
  line += ' ';
  line += x.path.substr(0, 200);
  line += '"';
  if (suppressed > 0) {
    line += " (";
    line += std::to_string(suppressed);
    line += " similar lines suppressed)";
  }
  w.warn(line);
}

}  // namespace sag::session
