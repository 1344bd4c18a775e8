// Whether a request whose attempt on a server failed may go to a server
// again, and what the failure says about the server. A pure function of
// what happened and what was sent, so every case is a unit test
// (tests/session/forward/retry_policy_test.cc); docs/behaviour.md#retries
// states the same rules for operators.
#pragma once

#include <cstdint>

namespace sag::session {

// How one attempt on a server failed.
enum class AttemptFailure : uint8_t {
  kConnect,  // no connection (refused, unreachable, timeouts.connect)
  kServer,   // the connection failed while sending, or before the response was whole
  kTimeout,  // the server took the request and said nothing within timeouts.server
};

struct Attempt {
  AttemptFailure failure = AttemptFailure::kServer;
  bool reused = false;         // the connection came from the idle pool
  bool response_byte = false;  // any byte of a response arrived
  bool replayable = false;     // idempotent and without a body: safe to send twice
  uint32_t charged = 0;        // retries already charged against the backend's `retries`
  uint32_t retries = 0;        // the backend's `retries`
};

struct RetryVerdict {
  enum Action : uint8_t {
    kAnswer,       // give up: the client gets this failure's answer
    kTryAnother,   // exclude this server, choose again (charged against `retries`)
    kReplayFresh,  // same choice on a fresh connection; free (the pool was stale)
  };
  Action action = kAnswer;
  bool server_failed = false;  // counts as a passive failure of the server
};

// Rules: a connect failure moves on while retries remain (nothing was sent).
// A timeout is never retried (the server has the request). Otherwise bytes
// may have reached the server, so only a replayable request moves on; a
// pooled connection that closed before any response byte was stale, says
// nothing of the server, and is replaced for free.
constexpr RetryVerdict decide_retry(const Attempt& a) {
  const bool budget = a.charged < a.retries;
  switch (a.failure) {
    case AttemptFailure::kConnect:
      return {budget ? RetryVerdict::kTryAnother : RetryVerdict::kAnswer, true};
    case AttemptFailure::kTimeout:
      return {RetryVerdict::kAnswer, true};
    case AttemptFailure::kServer:
      break;
  }
  const bool stale = a.reused && !a.response_byte;
  if (!a.replayable) return {RetryVerdict::kAnswer, !stale};
  if (stale) return {RetryVerdict::kReplayFresh, false};
  return {budget ? RetryVerdict::kTryAnother : RetryVerdict::kAnswer, true};
}

}  // namespace sag::session
