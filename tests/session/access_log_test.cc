// Access log line formats (session/access_log.h, docs/behaviour.md#access-log).
#include "session/access_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>
#include <atomic>
#include <thread>

namespace sag::session {
namespace {

using namespace std::string_literals;
using std::chrono::milliseconds;
using std::chrono::system_clock;

// 2026-11-21T10:15:30.123Z
constexpr int64_t kStartMs = 1795256130123;

AccessRecord record() {
  AccessRecord r;
  r.client_ip = "127.0.0.1";
  r.client_port = 5000;
  r.start = system_clock::time_point(milliseconds(kStartMs));
  r.listener = "https";
  r.backend = "app";
  r.server = "s1";
  r.tq = 1;
  r.tw = 0;
  r.tc = 2;
  r.tr = 3;
  r.tt = 6;
  r.status = 200;
  r.bytes = 512;
  r.persist = "cookie-hit";
  r.retries = 0;
  r.method = "GET";
  r.path = "/x";
  r.protocol = "HTTP/1.1";
  return r;
}

std::string text(const AccessRecord& r) {
  std::string out;
  AccessLog::format_text(r, out);
  return out;
}

std::string json(const AccessRecord& r) {
  std::string out;
  AccessLog::format_json(r, out);
  return out;
}

// A strict little JSON reader for one flat object of strings and integers:
// returns key -> decoded value (strings unescaped, numbers as written), or
// sets `error`. Checks what a real parser would: no raw control bytes, valid
// escapes, valid UTF-8, no trailing bytes, no duplicate keys.
class FlatJson {
 public:
  explicit FlatJson(std::string_view s) : s_(s) {}

  std::map<std::string, std::string> parse(std::string& error) {
    std::map<std::string, std::string> out;
    if (!eat('{')) return fail(error, "expected {");
    if (eat('}')) return end(out, error);
    for (;;) {
      std::string key, value;
      if (!string(key)) return fail(error, "bad key");
      if (!eat(':')) return fail(error, "expected :");
      if (peek() == '"') {
        if (!string(value)) return fail(error, "bad string value");
      } else if (!number(value)) {
        return fail(error, "bad value");
      }
      if (!out.emplace(key, value).second) return fail(error, "duplicate key " + key);
      if (eat(',')) continue;
      if (eat('}')) return end(out, error);
      return fail(error, "expected , or }");
    }
  }

 private:
  std::map<std::string, std::string> fail(std::string& error, std::string what) {
    error = what + " at " + std::to_string(i_);
    return {};
  }
  std::map<std::string, std::string> end(std::map<std::string, std::string>& out,
                                         std::string& error) {
    if (i_ != s_.size()) return fail(error, "trailing bytes");
    return out;
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool eat(char c) {
    if (peek() != c || i_ >= s_.size()) return false;
    ++i_;
    return true;
  }
  bool number(std::string& v) {
    size_t start = i_;
    if (peek() == '-') ++i_;
    if (!(peek() >= '0' && peek() <= '9')) return false;
    if (peek() == '0' && i_ + 1 < s_.size() && s_[i_ + 1] >= '0' && s_[i_ + 1] <= '9')
      return false;  // no leading zeros
    while (peek() >= '0' && peek() <= '9') ++i_;
    v = std::string(s_.substr(start, i_ - start));
    return true;
  }
  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  bool string(std::string& v) {
    if (!eat('"')) return false;
    for (;;) {
      if (i_ >= s_.size()) return false;
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i_ >= s_.size()) return false;
        char e = s_[i_++];
        switch (e) {
          case '"': v += '"'; break;
          case '\\': v += '\\'; break;
          case '/': v += '/'; break;
          case 'b': v += '\b'; break;
          case 'f': v += '\f'; break;
          case 'n': v += '\n'; break;
          case 'r': v += '\r'; break;
          case 't': v += '\t'; break;
          case 'u': {
            if (i_ + 4 > s_.size()) return false;
            uint32_t cp = 0;
            for (int k = 0; k < 4; ++k) {
              char h = s_[i_++];
              cp <<= 4;
              if (h >= '0' && h <= '9') cp |= static_cast<uint32_t>(h - '0');
              else if (h >= 'a' && h <= 'f') cp |= static_cast<uint32_t>(h - 'a' + 10);
              else if (h >= 'A' && h <= 'F') cp |= static_cast<uint32_t>(h - 'A' + 10);
              else return false;
            }
            if (cp >= 0xd800 && cp <= 0xdfff) return false;  // not used here
            put_utf8(v, cp);
            break;
          }
          default:
            return false;
        }
        continue;
      }
      if (c < 0x80) {
        v += static_cast<char>(c);
        ++i_;
        continue;
      }
      // UTF-8 sequence.
      size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
      if (n == 0 || i_ + n > s_.size()) return false;
      uint32_t cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
      for (size_t k = 1; k < n; ++k) {
        unsigned char cc = static_cast<unsigned char>(s_[i_ + k]);
        if ((cc & 0xc0) != 0x80) return false;
        cp = (cp << 6) | (cc & 0x3f);
      }
      if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
          (cp >= 0xd800 && cp <= 0xdfff))
        return false;
      v.append(s_.data() + i_, n);
      i_ += n;
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

std::map<std::string, std::string> parse_json(const std::string& line) {
  std::string error;
  auto m = FlatJson(line).parse(error);
  EXPECT_EQ(error, "") << line;
  return m;
}

TEST(AccessLogText, SpecExample) {
  EXPECT_EQ(text(record()),
            "127.0.0.1:5000 [21/Nov/2026:10:15:30.123] https app/s1 1/0/2/3/6 200 512 "
            "cookie-hit 0 \"GET /x HTTP/1.1\" ok");
}

// TCP mode (SPEC §6): Tw/Tc/Tt, bytes in and out, persist, termination.
TEST(AccessLogText, TcpConnection) {
  AccessRecord r = record();
  r.tcp = true;
  r.listener = "redis";
  r.backend = "pool";
  r.server = "r2";
  r.tw = 0;
  r.tc = 1;
  r.tt = 5000;
  r.bytes_in = 120;
  r.bytes = 4096;
  r.persist = "source-hit";
  r.termination = "client-close";
  std::string out;
  AccessLog::format_tcp_text(r, out);
  EXPECT_EQ(out, "127.0.0.1:5000 [21/Nov/2026:10:15:30.123] redis pool/r2 0/1/5000 120 4096 "
                 "source-hit client-close \"TCP\"");
  out.clear();
  AccessLog::format_tcp_json(r, out);
  const auto m = parse_json(out);
  EXPECT_EQ(m.at("bytes_in"), "120");
  EXPECT_EQ(m.at("bytes_out"), "4096");
  EXPECT_EQ(m.at("termination"), "client-close");
  EXPECT_EQ(m.at("protocol"), "TCP");
  EXPECT_EQ(m.at("server"), "r2");
  EXPECT_EQ(m.at("tt"), "5000");
  EXPECT_EQ(m.count("status"), 0u);
}

TEST(AccessLogText, Appends) {
  std::string out = "before|";
  AccessLog::format_text(record(), out);
  EXPECT_EQ(out.rfind("before|127.0.0.1:5000 [", 0), 0u) << out;
}

TEST(AccessLogText, NotReachedTimesAndGatewayAnswer) {
  AccessRecord r = record();
  r.server = "-";
  r.tw = r.tc = r.tr = -1;
  r.tq = 10001;
  r.tt = 10002;
  r.status = 408;
  r.bytes = 97;
  r.persist = "-";
  r.retries = 0;
  EXPECT_EQ(text(r),
            "127.0.0.1:5000 [21/Nov/2026:10:15:30.123] https app/- 10001/-1/-1/-1/10002 408 97 - 0 "
            "\"GET /x HTTP/1.1\" ok");
  // Empty fields are written as "-" too.
  r.backend = "";
  r.server = "";
  r.persist = "";
  r.tq = r.tt = -1;
  EXPECT_EQ(text(r),
            "127.0.0.1:5000 [21/Nov/2026:10:15:30.123] https -/- -1/-1/-1/-1/-1 408 97 - 0 "
            "\"GET /x HTTP/1.1\" ok");
}

TEST(AccessLogText, OtherValues) {
  AccessRecord r = record();
  r.client_ip = "192.0.2.44";
  r.client_port = 65535;
  r.start = system_clock::time_point(milliseconds(1767225599000 + 7));  // 2025-12-31T23:59:59.007Z
  r.persist = "redispatch";
  r.retries = 2;
  r.status = 502;
  r.bytes = 18446744073709551615ull;
  r.method = "POST";
  r.path = "/api/v1/items?id=7&x=%20";
  r.protocol = "HTTP/2.0";
  EXPECT_EQ(text(r),
            "192.0.2.44:65535 [31/Dec/2025:23:59:59.007] https app/s1 1/0/2/3/6 502 "
            "18446744073709551615 redispatch 2 \"POST /api/v1/items?id=7&x=%20 HTTP/2.0\" ok");
  EXPECT_NE(json(r).find(",\"bytes\":18446744073709551615,"), std::string::npos) << json(r);
  r.start = system_clock::time_point(milliseconds(1772323200000));  // 2026-03-01T00:00:00.000Z
  EXPECT_EQ(text(r).substr(17, 26), "[01/Mar/2026:00:00:00.000]");
}

TEST(AccessLogText, EveryMonth) {
  const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  // The 15th of each month of 2026 at 12:00:00 UTC.
  const int64_t days_before[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  const int64_t jan1 = 1767225600;  // 2026-01-01T00:00:00Z
  for (int m = 0; m < 12; ++m) {
    AccessRecord r = record();
    r.start = system_clock::time_point(
        std::chrono::seconds(jan1 + (days_before[m] + 14) * 86400 + 12 * 3600));
    EXPECT_EQ(text(r).substr(15, 26), "[15/"s + months[m] + "/2026:12:00:00.000]");
  }
}

TEST(AccessLogText, PathWithQuoteAndControlBytesIsEscaped) {
  AccessRecord r = record();
  r.path = "/a\"b\nc\rd\\e\x7f\x01\xff f";
  const std::string line = text(r);
  EXPECT_EQ(line,
            "127.0.0.1:5000 [21/Nov/2026:10:15:30.123] https app/s1 1/0/2/3/6 200 512 cookie-hit "
            "0 \"GET /a\\x22b\\x0ac\\x0dd\\x5ce\\x7f\\x01\\xff f HTTP/1.1\" ok");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find('\r'), std::string::npos);
  // Exactly two quotes: the ones around the request.
  EXPECT_EQ(std::count(line.begin(), line.end(), '"'), 2);
  r.method = "G\"T";
  r.path = "/";
  EXPECT_NE(text(r).find("\"G\\x22T / HTTP/1.1\""), std::string::npos) << text(r);
}

TEST(AccessLogText, NulInPath) {
  AccessRecord r = record();
  const std::string path = "/a\0b"s;
  r.path = path;
  EXPECT_NE(text(r).find("\"GET /a\\x00b HTTP/1.1\""), std::string::npos) << text(r);
}

TEST(AccessLogJson, ExactLine) {
  EXPECT_EQ(json(record()),
            "{\"time\":\"2026-11-21T10:15:30.123Z\",\"client_ip\":\"127.0.0.1\","
            "\"client_port\":5000,\"listener\":\"https\",\"backend\":\"app\",\"server\":\"s1\","
            "\"tq\":1,\"tw\":0,\"tc\":2,\"tr\":3,\"tt\":6,\"status\":200,\"bytes\":512,"
            "\"persist\":\"cookie-hit\",\"retries\":0,\"method\":\"GET\",\"path\":\"/x\","
            "\"protocol\":\"HTTP/1.1\",\"termination\":\"ok\"}");
}

TEST(AccessLogJson, ParsesWithEverySpecKey) {
  auto m = parse_json(json(record()));
  const std::map<std::string, std::string> want = {
      {"time", "2026-11-21T10:15:30.123Z"}, {"client_ip", "127.0.0.1"},
      {"client_port", "5000"},              {"listener", "https"},
      {"backend", "app"},                   {"server", "s1"},
      {"tq", "1"},                          {"tw", "0"},
      {"tc", "2"},                          {"tr", "3"},
      {"tt", "6"},                          {"status", "200"},
      {"bytes", "512"},                     {"persist", "cookie-hit"},
      {"retries", "0"},                     {"method", "GET"},
      {"path", "/x"},                       {"protocol", "HTTP/1.1"},
      {"termination", "ok"}};
  EXPECT_EQ(m, want);
}

TEST(AccessLogJson, NotReachedAndGatewayAnswer) {
  AccessRecord r = record();
  r.server = "";
  r.backend = "";
  r.persist = "";
  r.tq = r.tw = r.tc = r.tr = -1;
  r.tt = 3;
  r.status = 400;
  auto m = parse_json(json(r));
  EXPECT_EQ(m["server"], "-");
  EXPECT_EQ(m["backend"], "-");
  EXPECT_EQ(m["persist"], "-");
  EXPECT_EQ(m["tq"], "-1");
  EXPECT_EQ(m["tw"], "-1");
  EXPECT_EQ(m["tc"], "-1");
  EXPECT_EQ(m["tr"], "-1");
  EXPECT_EQ(m["tt"], "3");
  EXPECT_EQ(m["status"], "400");
  EXPECT_EQ(m.size(), 19u);
}

TEST(AccessLogJson, HostileStringsRoundTrip) {
  AccessRecord r = record();
  const std::string path = "/a\"b\\c\nd\re\tf\x01g\x7fh\0i/caf\xc3\xa9/\xf0\x9f\x98\x80"s;
  r.path = path;
  r.method = "P\"T";
  const std::string line = json(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto m = parse_json(line);
  EXPECT_EQ(m["path"], path);
  EXPECT_EQ(m["method"], "P\"T");
  EXPECT_NE(line.find("\"path\":\"/a\\\"b\\\\c\\u000ad\\u000de\\u0009f\\u0001g\\u007fh\\u0000i/"
                      "caf\xc3\xa9/\xf0\x9f\x98\x80\""),
            std::string::npos)
      << line;
}

TEST(AccessLogJson, InvalidUtf8StaysValidJson) {
  // Raw bytes >= 0x80 pass request-head validation (obs-text); the JSON line
  // must still be valid UTF-8.
  for (const std::string& bad :
       {"/\xff"s, "/\xfe\xff"s, "/\x80"s, "/\xc0\xaf"s /* overlong */,
        "/\xe2\x82"s /* truncated */, "/\xed\xa0\x80"s /* surrogate */,
        "/\xf4\x90\x80\x80"s /* > U+10FFFF */, "/\xe0\x80\xaf"s /* overlong */,
        "/\xc3"s, "/caf\xe9"s}) {
    AccessRecord r = record();
    r.path = bad;
    const std::string line = json(r);
    auto m = parse_json(line);
    EXPECT_EQ(m.size(), 19u) << line;
  }
  AccessRecord r = record();
  r.path = "/caf\xe9";
  EXPECT_NE(json(r).find("\"path\":\"/caf\\u00e9\""), std::string::npos) << json(r);
  r.path = "/\xc3\xa9\xc3";
  EXPECT_NE(json(r).find("\"path\":\"/\xc3\xa9\\u00c3\""), std::string::npos) << json(r);
}

TEST(AccessLogJson, Appends) {
  std::string out = "x";
  AccessLog::format_json(record(), out);
  EXPECT_EQ(out.substr(0, 10), "x{\"time\":\"");
}

// An empty file of our own for a log; "" when none could be made.
std::string temp_log_path() {
  char tmpl[] = "/tmp/sag-access-log-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) return "";
  close(fd);
  return tmpl;
}

TEST(AccessLogFile, WritesOneLinePerRecordAndFlushesOnClose) {
  const std::string path = temp_log_path();
  ASSERT_FALSE(path.empty());
  {
    config::AccessLogConfig cfg;
    cfg.path = path;
    cfg.format = config::LogFormat::kText;
    std::string error;
    auto log = AccessLog::open(cfg, error);
    ASSERT_NE(log, nullptr) << error;
    EXPECT_TRUE(log->enabled());
    AccessRecord r = record();
    log->write(r);
    r.path = "/second\nline";
    log->write(r);
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(path.c_str());
  EXPECT_EQ(ss.str(),
            text(record()) + "\n" +
                "127.0.0.1:5000 [21/Nov/2026:10:15:30.123] https app/s1 1/0/2/3/6 200 512 "
                "cookie-hit 0 \"GET /second\\x0aline HTTP/1.1\" ok\n");
}

// Workers write their own lanes (issue 12: nothing shared per request); the
// writer merges the lanes by completion time, so lines written one after
// the other by different workers come out in that order, and none is lost.
TEST(AccessLogFile, LanesOfSeveralWorkersMergeInCompletionOrder) {
  const std::string path = temp_log_path();
  ASSERT_FALSE(path.empty());
  const size_t saved = base::worker_shards();
  base::set_worker_shards(3);  // slot 0 + two workers
  constexpr int kLines = 3000;
  {
    config::AccessLogConfig cfg;
    cfg.path = path;
    std::string error;
    auto log = AccessLog::open(cfg, error);
    ASSERT_NE(log, nullptr) << error;
    // Three threads (worker slots 1, 2 and the shared 0) take turns.
    std::atomic<int> turn{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
      threads.emplace_back([&, t] {
        base::t_worker_slot = static_cast<size_t>(t);
        for (int i = t; i < kLines; i += 3) {
          while (turn.load() != i) std::this_thread::yield();
          AccessRecord r = record();
          const std::string p = "/" + std::to_string(i);
          r.path = p;
          log->write(r);
          turn.store(i + 1);
        }
      });
    for (auto& th : threads) th.join();
  }
  base::set_worker_shards(saved);
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    EXPECT_NE(line.find("\"GET /" + std::to_string(n) + " HTTP/1.1\""), std::string::npos)
        << "line " << n << ": " << line;
    ++n;
  }
  std::remove(path.c_str());
  EXPECT_EQ(n, kLines);
}

TEST(AccessLogFile, JsonFormat) {
  const std::string path = temp_log_path();
  ASSERT_FALSE(path.empty());
  {
    config::AccessLogConfig cfg;
    cfg.path = path;
    cfg.format = config::LogFormat::kJson;
    std::string error;
    auto log = AccessLog::open(cfg, error);
    ASSERT_NE(log, nullptr) << error;
    log->write(record());
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(path.c_str());
  EXPECT_EQ(ss.str(), json(record()) + "\n");
}

TEST(AccessLogFile, EmptyPathIsOffAndBadPathIsAnError) {
  config::AccessLogConfig off;
  off.path = "";
  std::string error;
  auto log = AccessLog::open(off, error);
  ASSERT_NE(log, nullptr);
  EXPECT_FALSE(log->enabled());
  log->write(record());  // no-op
  EXPECT_EQ(error, "");

  config::AccessLogConfig bad;
  bad.path = "/nonexistent-dir-sag/access.log";
  auto none = AccessLog::open(bad, error);
  EXPECT_EQ(none, nullptr);
  EXPECT_NE(error.find("/nonexistent-dir-sag/access.log"), std::string::npos) << error;
}

}  // namespace
}  // namespace sag::session
