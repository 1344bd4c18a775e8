#include "config/redis/redis_connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

namespace sag::redis {
namespace asio = boost::asio;

namespace {

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:  // REDIS_REPLY_NIL
      break;
  }
  return out;
}

std::string_view element_str(const redisReply* r, size_t i) {
  if (r->type != REDIS_REPLY_ARRAY || i >= r->elements) return {};
  const redisReply* e = r->element[i];
  if (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS) return {};
  return {e->str, e->len};
}

const RedisReply kNilReply;

}  // namespace

// ------------------------------------------------------------ RedisReplyLimits

RedisReplyLimits::RedisReplyLimits() = default;
RedisReplyLimits::~RedisReplyLimits() = default;

void RedisReplyLimits::attach(redisReader* reader) {
  if (!reader->fn) return;  // a reader that builds nothing: only check_buffered() applies
  base_ = reader->fn;
  checked_ = std::make_unique<redisReplyObjectFunctions>(*base_);
  checked_->createString = &RedisReplyLimits::create_string;
  checked_->createArray = &RedisReplyLimits::create_array;
  checked_->createInteger = &RedisReplyLimits::create_integer;
  checked_->createNil = &RedisReplyLimits::create_nil;
  reader->fn = checked_.get();
  reader->privdata = this;  // hiredis hands it to every task (task->privdata)
}

void* RedisReplyLimits::refuse(std::string why) {
  if (refused_.empty()) refused_ = "reply refused: " + why;
  return nullptr;  // the reader fails ("Out of memory") and the context ends
}

// Runs for bulk strings once they are buffered whole (check_buffered()
// refused those announced too long before that), and for simple strings
// and errors: counted against the reply's byte budget.
bool RedisReplyLimits::begin_reply() {
  bytes_ = elements_ = 0;
  // The reply's callback is still queued while its object is built (hiredis
  // shifts it afterwards): an empty queue on a command connection means
  // nobody asked.
  if (ac_ && !(ac_->c.flags & (REDIS_SUBSCRIBED | REDIS_MONITORING)) && ac_->replies.head == nullptr) {
    refuse("a reply nobody asked for");
    return false;
  }
  return true;
}

void* RedisReplyLimits::create_integer(const redisReadTask* task, long long value) {
  auto* self = static_cast<RedisReplyLimits*>(task->privdata);
  if (!task->parent && !self->begin_reply()) return nullptr;
  return self->base_->createInteger(task, value);
}

void* RedisReplyLimits::create_nil(const redisReadTask* task) {
  auto* self = static_cast<RedisReplyLimits*>(task->privdata);
  if (!task->parent && !self->begin_reply()) return nullptr;
  return self->base_->createNil(task);
}

void* RedisReplyLimits::create_string(const redisReadTask* task, char* str, size_t len) {
  auto* self = static_cast<RedisReplyLimits*>(task->privdata);
  if (!task->parent) {
    // An error nobody asked for (Redis says why before it closes) is
    // hiredis's to handle: it fails the context with the error's text.
    if (task->type == REDIS_REPLY_ERROR) {
      self->bytes_ = self->elements_ = 0;
    } else if (!self->begin_reply()) {
      return nullptr;
    }
  }
  if (len > kMaxBytes - self->bytes_)
    return self->refuse("a string of " + std::to_string(len) + " bytes (at most " + std::to_string(kMaxBytes) +
                        " bytes of strings in one reply)");
  self->bytes_ += len;
  return self->base_->createString(task, str, len);
}

// Runs on an array's header, before any of its elements arrived: the count
// is refused here, before hiredis allocates room for it.
void* RedisReplyLimits::create_array(const redisReadTask* task, int elements) {
  auto* self = static_cast<RedisReplyLimits*>(task->privdata);
  if (!task->parent && !self->begin_reply()) return nullptr;
  int depth = 1;
  for (const redisReadTask* p = task->parent; p; p = p->parent) ++depth;
  if (depth > kMaxDepth)
    return self->refuse("arrays nested " + std::to_string(depth) + " deep (at most " + std::to_string(kMaxDepth) +
                        ")");
  if (elements < 0 || static_cast<size_t>(elements) > kMaxElements - self->elements_)
    return self->refuse("an array of " + std::to_string(elements) + " elements" +
                        (self->elements_ ? " after " + std::to_string(self->elements_) + " others" : "") +
                        " (at most " + std::to_string(kMaxElements) + " in one reply)");
  self->elements_ += static_cast<size_t>(elements);
  return self->base_->createArray(task, elements);
}

bool RedisReplyLimits::check_buffered(const redisReader* r) {
  if (!refused_.empty()) return false;
  // A failed reader ends the context by itself; an empty one waits.
  if (r->err || r->len <= r->pos) return true;
  const size_t buffered = r->len - r->pos;
  // hiredis parses everything complete as it comes, so what stays buffered
  // belongs to the one item it waits on: a line without its CRLF yet, or a
  // bulk string whose data is not all there. Whatever that is, it never
  // needs more than this.
  if (buffered > kMaxBytes + kMaxLine) {
    refuse("more than " + std::to_string(kMaxBytes + kMaxLine) + " bytes buffered for one reply");
    return false;
  }
  const int type = r->ridx >= 0 ? r->rstack[r->ridx].type : -1;
  if (type != REDIS_REPLY_STRING) {
    if (buffered > kMaxLine) {
      refuse("a line of more than " + std::to_string(kMaxLine) + " bytes");
      return false;
    }
    return true;
  }
  // A bulk string: the reader consumed its '$' and waits at "<length>\r\n"
  // until length + 2 more bytes are buffered. Its length line is short
  // (hiredis takes at most 20 digits); once complete, hiredis has accepted
  // it, or the reader would have failed.
  constexpr size_t kLengthLine = 32;
  const std::string_view head(r->buf + r->pos, std::min(buffered, kLengthLine));
  const size_t crlf = head.find("\r\n");
  if (crlf == std::string_view::npos) {
    if (buffered < kLengthLine) return true;  // the rest of the line is on its way
    refuse("a bulk string length line of more than " + std::to_string(kLengthLine) + " bytes");
    return false;
  }
  unsigned long long len = 0;
  const auto [end, ec] = std::from_chars(head.data(), head.data() + crlf, len);
  if (ec != std::errc() || end != head.data() + crlf) return true;  // not a length hiredis waits on
  // Strings read before it count when it is inside an array (at the root,
  // the reply is this string alone: bytes_ is the previous reply's).
  const size_t used = r->ridx == 0 ? 0 : bytes_;
  if (len > kMaxBytes - used) {
    refuse("a bulk string of " + std::to_string(len) + " bytes (at most " + std::to_string(kMaxBytes) +
           " bytes of strings in one reply)");
    return false;
  }
  return true;
}

// ------------------------------------------------------------- RedisConnection

std::shared_ptr<RedisConnection> RedisConnection::create(asio::io_context& io,
                                                         std::chrono::milliseconds timeout) {
  return std::shared_ptr<RedisConnection>(new RedisConnection(io, timeout));
}

RedisConnection::RedisConnection(asio::io_context& io, std::chrono::milliseconds timeout)
    : io_(io), timeout_(timeout), fd_(io), timer_(io) {}

RedisConnection::~RedisConnection() {
  if (ac_) {
    // No one is left to tell: callbacks are dropped (see the header).
    destroying_ = true;
    closed_by_owner_ = true;
    redisAsyncFree(ac_);
  }
}

bool RedisConnection::open(const std::string& host, uint16_t port, ClosedFn closed, std::string& error) {
  redisAsyncContext* ac = redisAsyncConnect(host.c_str(), port);
  if (!ac) {
    error = "out of memory";
    return false;
  }
  if (ac->err) {
    error = ac->errstr ? ac->errstr : "connect failed";
    redisAsyncFree(ac);  // no hooks attached yet: frees and closes the fd
    return false;
  }
  boost::system::error_code ec;
  fd_.assign(ac->c.fd, ec);
  if (ec) {
    error = ec.message();
    redisAsyncFree(ac);
    return false;
  }
  ac->data = this;
  ac->ev.data = this;
  ac->ev.addRead = &RedisConnection::hook_add_read;
  ac->ev.delRead = &RedisConnection::hook_del_read;
  ac->ev.addWrite = &RedisConnection::hook_add_write;
  ac->ev.delWrite = &RedisConnection::hook_del_write;
  ac->ev.cleanup = &RedisConnection::hook_cleanup;
  limits_.attach(ac->c.reader);
  limits_.guard_unsolicited(ac);
  ac_ = ac;
  closed_ = std::move(closed);
  // The non-blocking connect completes (or fails) when the socket becomes
  // writable; hiredis checks the outcome on that first write event.
  want_write_ = true;
  arm_write();
  return true;
}

void RedisConnection::hook_add_read(void* p) {
  auto* c = static_cast<RedisConnection*>(p);
  c->want_read_ = true;
  c->arm_read();
}
void RedisConnection::hook_del_read(void* p) { static_cast<RedisConnection*>(p)->want_read_ = false; }
void RedisConnection::hook_add_write(void* p) {
  auto* c = static_cast<RedisConnection*>(p);
  c->want_write_ = true;
  c->arm_write();
}
void RedisConnection::hook_del_write(void* p) { static_cast<RedisConnection*>(p)->want_write_ = false; }
void RedisConnection::hook_cleanup(void* p) { static_cast<RedisConnection*>(p)->cleanup(); }

// A wait stays armed after delRead/delWrite (cancelling one direction of a
// descriptor would cancel both); a completion nobody wants is ignored.
void RedisConnection::arm_read() {
  if (read_waiting_ || !ac_ || destroying_) return;
  read_waiting_ = true;
  fd_.async_wait(asio::posix::descriptor_base::wait_read,
                 [self = shared_from_this()](boost::system::error_code ec) {
                   self->read_waiting_ = false;
                   if (ec || !self->ac_ || !self->want_read_) return;
                   redisAsyncHandleRead(self->ac_);  // may free the context
                   // A reply past the limits ends the connection like a
                   // reset; checked after every read, so the reader never
                   // holds more than a limit plus one read.
                   if (self->ac_ && !self->limits_.check_buffered(self->ac_->c.reader))
                     self->end(asio::error::connection_reset);
                   if (self->ac_ && self->want_read_) self->arm_read();
                 });
}

void RedisConnection::arm_write() {
  if (write_waiting_ || !ac_ || destroying_) return;
  write_waiting_ = true;
  fd_.async_wait(asio::posix::descriptor_base::wait_write,
                 [self = shared_from_this()](boost::system::error_code ec) {
                   self->write_waiting_ = false;
                   if (ec || !self->ac_ || !self->want_write_) return;
                   redisAsyncHandleWrite(self->ac_);  // may free the context
                   if (self->ac_ && self->want_write_) self->arm_write();
                 });
}

void RedisConnection::command(const std::vector<std::string>& argv, ReplyFn done,
                              std::chrono::milliseconds timeout) {
  int status = REDIS_ERR;
  if (ac_ && !argv.empty()) {
    std::vector<const char*> args;
    std::vector<size_t> lens;
    args.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    // Refused while the context is being freed (DISCONNECTING/FREEING).
    status = redisAsyncCommandArgv(ac_, &RedisConnection::on_reply, nullptr, static_cast<int>(args.size()),
                                   args.data(), lens.data());
  }
  if (status != REDIS_OK) {
    const auto ec = end_ec_ ? end_ec_ : boost::system::error_code(asio::error::not_connected);
    asio::post(io_, [done = std::move(done), ec] { done(ec, kNilReply); });
    return;
  }
  pending_.push_back({std::chrono::steady_clock::now() + (timeout.count() > 0 ? timeout : timeout_),
                      std::move(done)});
  arm_timer();
}

void RedisConnection::subscribe(const std::vector<std::string>& channels, MessageFn on_message) {
  if (!message_fn_) message_fn_ = std::move(on_message);
  if (!ac_ || channels.empty()) return;
  std::vector<const char*> args{"SUBSCRIBE"};
  std::vector<size_t> lens{9};
  for (const auto& c : channels) {
    args.push_back(c.data());
    lens.push_back(c.size());
  }
  if (redisAsyncCommandArgv(ac_, &RedisConnection::on_message, nullptr, static_cast<int>(args.size()),
                            args.data(), lens.data()) != REDIS_OK)
    return;  // the context is going away; closing reports it
  if (unconfirmed_ == 0) subscribe_deadline_ = std::chrono::steady_clock::now() + timeout_;
  unconfirmed_ += channels.size();
  arm_timer();
}

void RedisConnection::on_reply(redisAsyncContext* ac, void* reply, void*) {
  static_cast<RedisConnection*>(ac->data)->handle_reply(static_cast<redisReply*>(reply));
}

void RedisConnection::on_message(redisAsyncContext* ac, void* reply, void*) {
  static_cast<RedisConnection*>(ac->data)->handle_push(static_cast<redisReply*>(reply));
}

void RedisConnection::handle_reply(redisReply* r) {
  // Replies come in command order: this one belongs to the oldest pending.
  if (pending_.empty()) return;
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  if (!r) {  // the context is being freed: completed after it, with the reason
    if (!destroying_) failed_.push_back(std::move(p.done));
    return;
  }
  p.done({}, convert(r));
}

void RedisConnection::handle_push(redisReply* r) {
  if (!r) return;  // freeing; cleanup() reports the end
  const std::string_view kind = element_str(r, 0);
  if (kind == "message") {
    if (message_fn_) message_fn_(element_str(r, 1), element_str(r, 2));
  } else if (kind == "subscribe") {
    if (unconfirmed_ > 0 && --unconfirmed_ == 0 && confirmed_fn_) confirmed_fn_();
  }
}

void RedisConnection::arm_timer() {
  if (!ac_) return;
  std::chrono::steady_clock::time_point at = std::chrono::steady_clock::time_point::max();
  if (!pending_.empty()) at = pending_.front().deadline;
  if (unconfirmed_ > 0 && subscribe_deadline_ < at) at = subscribe_deadline_;
  if (at == std::chrono::steady_clock::time_point::max()) return;
  if (timer_armed_ && timer_at_ <= at) return;  // it fires first and re-arms
  timer_armed_ = true;
  timer_at_ = at;
  timer_.expires_at(at);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return;  // re-armed (expires_at cancels) or closed
    self->timer_armed_ = false;
    self->on_timer();
  });
}

void RedisConnection::on_timer() {
  if (!ac_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool late = (!pending_.empty() && pending_.front().deadline <= now) ||
                    (unconfirmed_ > 0 && subscribe_deadline_ <= now);
  if (late) {
    end(asio::error::timed_out);
  } else {
    arm_timer();
  }
}

void RedisConnection::end(boost::system::error_code ec) {
  if (!ac_) return;
  end_ec_ = ec;
  redisAsyncFree(ac_);  // runs the callbacks with NULL, then cleanup()
}

void RedisConnection::close(boost::system::error_code ec) {
  closed_by_owner_ = true;
  if (!ac_) return;
  end_ec_ = ec;
  // Inside a hiredis callback the free is deferred until it returns; either
  // way cleanup() follows.
  redisAsyncFree(ac_);
}

void RedisConnection::cleanup() {
  boost::system::error_code ec = end_ec_;
  std::string reason;
  if (ac_->c.err) reason = ac_->c.errstr;
  // A refused reply fails the reader with hiredis' "Out of memory": say why.
  if (!limits_.refused().empty()) reason = limits_.refused();
  if (!ec) {
    ec = (ac_->c.flags & REDIS_CONNECTED) ? asio::error::connection_reset : asio::error::connection_refused;
  }
  if (reason.empty()) reason = ec.message();
  ac_ = nullptr;
  want_read_ = want_write_ = false;
  unconfirmed_ = 0;
  timer_.cancel();
  if (fd_.is_open()) fd_.release();  // hiredis closes the fd itself
  if (destroying_) return;
  end_ec_ = ec;
  // Completed outside hiredis' free: the owner hears of the end first (so it
  // sees the connection down when the failed commands arrive), then each
  // pending command gets its error.
  asio::post(io_, [self = shared_from_this(), ec, reason, failed = std::move(failed_)]() mutable {
    if (!self->closed_by_owner_ && self->closed_) {
      auto fn = std::move(self->closed_);
      fn(ec, reason);
    }
    for (auto& f : failed) f(ec, kNilReply);
  });
  failed_.clear();
}

}  // namespace sag::redis
