// TCP mode (SPEC §8, docs/behaviour.md#tcp-mode): a connection accepted on a
// `mode: tcp` listener is connected at once to a server of the listener's
// backend (a `source` entry for the client's address first, then the
// balancer; a connect failure tries another server within `retries`, and
// with `persistence.source` the new choice is written back), then bytes are
// relayed both ways, half-closes passed on, until both sides closed, either
// side reset, `timeouts.idle` passed with no byte either way, or the
// gateway stopped. One access log line when it ends.
//
// Thread: the worker's. A relay holds no buffer while both sides are quiet:
// each direction waits for readability, then leases a buffer from the
// worker's pool for one read and its write.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "session/worker_context.h"

namespace sag::session {

// `listener` (of the worker's current generation) is a tcp listener;
// `worker` outlives the coroutine. The caller has already counted the
// connection in worker.process_connections; this releases it.
boost::asio::awaitable<void> run_tcp_connection(boost::asio::ip::tcp::socket socket,
                                                const ListenerRuntime& listener, WorkerContext& worker);

}  // namespace sag::session
