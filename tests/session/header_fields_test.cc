// HeaderFields (session/header_fields.h): basic_fields' semantics as the
// request path relies on them (order, case, trimming, set/erase/lookup by
// enum and by name, equal_range), the Fields concept hooks Beast's message
// calls (chunked, keep-alive, content length, method/target/reason), the
// serializer's writer, copies, moves and storage growth.
#include "session/header_fields.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <string>
#include <vector>

#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>

#include "session/http_message.h"

namespace sag::session {
namespace {

namespace http = boost::beast::http;
using F = http::field;

std::vector<std::string> lines(const HeaderFields& f) {
  std::vector<std::string> out;
  for (const auto& v : f) out.emplace_back(std::string(v.name_string()) + "=" + std::string(v.value()));
  return out;
}

TEST(HeaderFieldsTest, KeepsOrderCaseAndTrimsValues) {
  HeaderFields f;
  f.insert("x-Odd-CASE", "  padded \t");
  f.insert(F::host, "example.com");
  f.insert("Set-Cookie", "a=1");
  f.insert(F::set_cookie, "b=2");
  f.insert(F::content_type, "text/plain");
  EXPECT_EQ(lines(f), (std::vector<std::string>{"x-Odd-CASE=padded", "Host=example.com",
                                                "Set-Cookie=a=1", "Set-Cookie=b=2",
                                                "Content-Type=text/plain"}));
  for (const auto& v : f) {
    EXPECT_EQ(v.line(), std::string(v.name_string()) + ": " + std::string(v.value()) + "\r\n");
  }
  EXPECT_EQ(f.begin()->name(), F::unknown);
  EXPECT_EQ(f.find("SET-COOKIE")->name(), F::set_cookie);
}

TEST(HeaderFieldsTest, LookupByEnumAndByAnyCaseName) {
  HeaderFields f;
  f.insert("X-Custom", "1");
  f.insert("cookie", "a=1");
  f.insert("Cookie", "b=2");
  EXPECT_EQ(f[F::cookie], "a=1");
  EXPECT_EQ(f["COOKIE"], "a=1");
  EXPECT_EQ(f["x-custom"], "1");
  EXPECT_EQ(f["X-Missing"], "");
  EXPECT_EQ(f[F::host], "");
  EXPECT_EQ(f.count(F::cookie), 2u);
  EXPECT_EQ(f.count("x-CUSTOM"), 1u);
  EXPECT_EQ(f.find(F::host), f.end());
  std::vector<std::string> cookies;
  for (auto [it, last] = f.equal_range(F::cookie); it != last; ++it) cookies.emplace_back(it->value());
  EXPECT_EQ(cookies, (std::vector<std::string>{"a=1", "b=2"}));
  cookies.clear();
  for (auto [it, last] = f.equal_range("X-CUSTOM"); it != last; ++it) cookies.emplace_back(it->value());
  EXPECT_EQ(cookies, (std::vector<std::string>{"1"}));
}

TEST(HeaderFieldsTest, SetReplacesEveryInstanceAtTheEndEraseRemoves) {
  HeaderFields f;
  f.insert(F::via, "1");
  f.insert(F::host, "a");
  f.insert(F::via, "2");
  f.insert("X-A", "x");
  f.set(F::via, "3");
  EXPECT_EQ(lines(f), (std::vector<std::string>{"Host=a", "X-A=x", "Via=3"}));
  f.set("x-a", "y");
  EXPECT_EQ(lines(f), (std::vector<std::string>{"Host=a", "Via=3", "x-a=y"}));
  EXPECT_EQ(f.erase(F::via), 1u);
  EXPECT_EQ(f.erase(F::via), 0u);
  EXPECT_EQ(f.erase("X-A"), 1u);
  EXPECT_EQ(lines(f), (std::vector<std::string>{"Host=a"}));
  // erase(iterator) returns the next live field.
  f.insert("K", "1");
  f.insert("K", "2");
  f.insert("L", "3");
  auto it = f.find("K");
  it = f.erase(it);
  EXPECT_EQ(it->value(), "2");
  it = f.erase(it);
  EXPECT_EQ(it->value(), "3");
  EXPECT_EQ(lines(f), (std::vector<std::string>{"Host=a", "L=3"}));
  f.clear();
  EXPECT_TRUE(f.empty());
  f.insert(F::host, "again");
  EXPECT_EQ(lines(f), (std::vector<std::string>{"Host=again"}));
}

TEST(HeaderFieldsTest, ValuesStayValidAsStorageGrows) {
  HeaderFields f;
  std::vector<std::string> want;
  for (int i = 0; i < 300; ++i) {
    const std::string name = "X-Field-" + std::to_string(i);
    const std::string value(static_cast<size_t>(i * 37 % 9000), static_cast<char>('a' + i % 26));
    f.insert(name, value);
    want.push_back(name + "=" + value);
  }
  EXPECT_EQ(lines(f), want);
  // A value taken from the fields themselves survives the insert it feeds.
  f.set("Copy", f["X-Field-299"]);
  EXPECT_EQ(f["copy"], f["x-field-299"]);
}

TEST(HeaderFieldsTest, CopiesAndMovesAreIndependent) {
  Request a;
  a.method(http::verb::post);
  a.target("/t");
  a.insert(F::host, "h");
  a.insert("X-A", "1");
  Request b = a;
  b.set("X-A", "2");
  EXPECT_EQ(a["X-A"], "1");
  EXPECT_EQ(b["X-A"], "2");
  EXPECT_EQ(b.target(), "/t");
  Request c = std::move(b);
  EXPECT_EQ(c["x-a"], "2");
  EXPECT_EQ(c[F::host], "h");
  a = c;
  EXPECT_EQ(a["X-A"], "2");
  a = Request{};
  EXPECT_TRUE(a.base().empty());
  EXPECT_EQ(a.target(), "");
}

TEST(HeaderFieldsTest, MessageHooksForFramingAndConnection) {
  Response r;
  r.version(11);
  EXPECT_FALSE(r.chunked());
  r.insert(F::transfer_encoding, "gzip");
  r.chunked(true);
  EXPECT_TRUE(r.chunked());
  EXPECT_EQ(r[F::transfer_encoding], "gzip, chunked");
  r.chunked(false);
  EXPECT_EQ(r[F::transfer_encoding], "gzip");
  r.content_length(42);
  EXPECT_EQ(r[F::content_length], "42");
  EXPECT_TRUE(r.has_content_length());
  EXPECT_EQ(r.count(F::transfer_encoding), 1u);

  EXPECT_TRUE(r.keep_alive());
  r.insert(F::connection, "Upgrade");
  r.keep_alive(false);
  EXPECT_EQ(r[F::connection], "Upgrade, close");
  EXPECT_FALSE(r.keep_alive());
  r.keep_alive(true);
  EXPECT_EQ(r[F::connection], "Upgrade");
  EXPECT_TRUE(r.keep_alive());
  r.version(10);
  EXPECT_FALSE(r.keep_alive());
  r.keep_alive(true);
  EXPECT_EQ(r[F::connection], "Upgrade, keep-alive");
  EXPECT_TRUE(r.keep_alive());
}

TEST(HeaderFieldsTest, MethodTargetReason) {
  Request q;
  q.method_string("FROB");
  EXPECT_EQ(q.method(), http::verb::unknown);
  EXPECT_EQ(q.method_string(), "FROB");
  q.method_string("GET");
  EXPECT_EQ(q.method(), http::verb::get);
  EXPECT_EQ(q.method_string(), "GET");
  q.target("/a?b");
  EXPECT_EQ(q.target(), "/a?b");
  Response r;
  r.result(404);
  EXPECT_EQ(r.reason(), "Not Found");  // the standard text when none was set
  r.reason("Nope");
  EXPECT_EQ(r.reason(), "Nope");
}

// Everything a Beast serializer writes for `m`, head and body.
template <bool isRequest>
std::string serialized(const http::message<isRequest, http::string_body, HeaderFields>& m) {
  std::string out;
  http::serializer<isRequest, http::string_body, HeaderFields> sr{m};
  boost::system::error_code ec;
  while (!sr.is_done() && !ec) {
    sr.next(ec, [&](boost::system::error_code&, const auto& buffers) {
      out += boost::beast::buffers_to_string(buffers);
      sr.consume(boost::asio::buffer_size(buffers));
    });
  }
  EXPECT_FALSE(ec) << ec.message();
  return out;
}

TEST(HeaderFieldsTest, BeastSerializerWritesTheHeadThroughTheWriter) {
  http::request<http::string_body, HeaderFields> q;
  q.method_string("FROB");
  q.target("/x");
  q.version(11);
  q.insert(F::host, "h");
  q.insert("x-a", "1");
  q.body() = "abc";
  q.prepare_payload();
  EXPECT_EQ(serialized(q), "FROB /x HTTP/1.1\r\nHost: h\r\nx-a: 1\r\nContent-Length: 3\r\n\r\nabc");

  http::response<http::string_body, HeaderFields> r;
  r.result(201);
  r.version(10);
  r.insert(F::server, "s");
  EXPECT_EQ(serialized(r), "HTTP/1.0 201 Created\r\nServer: s\r\n\r\n");
}

TEST(HeaderFieldsTest, FieldOfAgreesWithBeast) {
  for (unsigned i = 1; i <= static_cast<unsigned>(F::xref); ++i) {
    const auto f = static_cast<F>(i);
    const std::string name(http::to_string(f));
    std::string upper = name;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(field_of(name), f) << name;
    EXPECT_EQ(field_of(upper), f) << upper;
  }
  for (const char* name : {"X-Forwarded-For", "x-forwarded-host", "X-FORWARDED-PORT",
                           "X-Forwarded-Proto", "X-Server", "Hos~", "hos-", "Content-Lengt"}) {
    EXPECT_EQ(field_of(name), http::string_to_field(name)) << name;
  }
  EXPECT_EQ(field_of("X-Not-A-Field"), F::unknown);
  EXPECT_EQ(field_of("hosts"), F::unknown);
  EXPECT_EQ(field_of(""), F::unknown);
  // Every name with any one byte changed, cut short by one or grown by one
  // (every byte is compared, whatever the name's length) gets Beast's
  // answer: unknown, or the other field it spells.
  for (unsigned i = 1; i <= static_cast<unsigned>(F::xref); ++i) {
    const std::string name(http::to_string(static_cast<F>(i)));
    for (size_t at = 0; at < name.size(); ++at) {
      std::string other = name;
      other[at] = other[at] == 'q' ? 'z' : 'q';
      EXPECT_EQ(field_of(other), http::string_to_field(other)) << other;
    }
    const std::string shorter = name.substr(0, name.size() - 1);
    EXPECT_EQ(field_of(shorter), http::string_to_field(shorter)) << shorter;
    EXPECT_EQ(field_of(name + "s"), http::string_to_field(name + "s")) << name;
  }
}

// Every field Beast knows is found by its enum and by its name, and the
// enums 64 apart from it (those a bitmask summary would conflate) don't
// find it.
TEST(HeaderFieldsTest, EveryKnownFieldIsFoundAndNoOtherEnumFindsIt) {
  const unsigned last = static_cast<unsigned>(F::xref);
  for (unsigned i = 1; i <= last; ++i) {
    const auto f = static_cast<F>(i);
    HeaderFields h;
    h.insert(f, "v");
    EXPECT_EQ(h.count(f), 1u) << i;
    EXPECT_EQ(h[http::to_string(f)], "v") << i;
    for (unsigned j = 1; j <= last; ++j) {
      if (j == i || (j & 63) != (i & 63)) continue;
      EXPECT_EQ(h.count(static_cast<F>(j)), 0u) << i << " " << j;
    }
  }
}

// Names Beast has no enum for are summarised by length (mod 32): one of
// each length up to 70 is found by name, in any case, after its neighbours
// and the lengths 32 apart were added and erased around it.
TEST(HeaderFieldsTest, EveryUnknownNameLengthIsFound) {
  auto name_of = [](size_t n) {
    std::string s = "X-";
    while (s.size() < n) s += static_cast<char>('a' + s.size() % 26);
    return s.substr(0, n);
  };
  for (size_t n = 3; n <= 70; ++n) {
    HeaderFields h;
    if (n > 3) h.insert(name_of(n - 1), "before");
    h.insert(name_of(n), "v");
    if (n + 32 <= 70) h.insert(name_of(n + 32), "later");
    h.erase(name_of(n - 1));
    std::string upper = name_of(n);
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(h[upper], "v") << n;
    EXPECT_EQ(h.count(name_of(n)), 1u) << n;
    EXPECT_EQ(h.count(name_of(n - 1)), 0u) << n;
    if (n + 64 <= 70) {
      EXPECT_EQ(h.count(name_of(n + 64)), 0u) << n;
    }
    EXPECT_TRUE(h.may_have_unknown(n)) << n;
    h.erase(name_of(n));
    EXPECT_EQ(h[name_of(n)], "") << n;
  }
  HeaderFields empty;
  for (size_t n = 0; n <= 70; ++n) EXPECT_FALSE(empty.may_have_unknown(n)) << n;
}

// Against a plain list as the model, through random inserts (by enum, by
// name, filed as a parser files them), erases, sets, moves, copies and
// clears: every lookup by enum and by name agrees.
TEST(HeaderFieldsTest, LookupsAgreeWithAListModel) {
  std::vector<F> names;
  for (F f : {F::host, F::connection, F::transfer_encoding, F::upgrade, F::te, F::cookie,
              F::content_length, F::keep_alive}) {
    names.push_back(f);
    const unsigned u = static_cast<unsigned>(f);
    if (u + 64 <= static_cast<unsigned>(F::xref)) names.push_back(static_cast<F>(u + 64));
    if (u > 64) names.push_back(static_cast<F>(u - 64));
  }
  std::mt19937 rng(20261206);
  HeaderFields h;
  std::vector<std::pair<F, std::string>> model;  // live fields in order
  std::string stored;  // a parser's input, kept alive while fields point into it
  stored.reserve(1 << 16);
  for (int step = 0; step < 4000; ++step) {
    const F f = names[rng() % names.size()];
    const std::string value = "v" + std::to_string(step);
    switch (rng() % 8) {
      case 0:
        h.insert(f, value);
        model.emplace_back(f, value);
        break;
      case 1:
        h.insert(http::to_string(f), value);
        model.emplace_back(f, value);
        break;
      case 2: {
        const std::string line = std::string(http::to_string(f)) + ": " + value + "\r\n";
        const char* at = stored.data() + stored.size();
        stored += line;
        h.append_stored(f, {at, http::to_string(f).size()},
                        {at + http::to_string(f).size() + 2, value.size()});
        model.emplace_back(f, value);
        break;
      }
      case 3:
        EXPECT_EQ(h.erase(f), static_cast<size_t>(std::erase_if(
                                  model, [&](auto& e) { return e.first == f; })));
        break;
      case 4:
        h.set(f, value);
        std::erase_if(model, [&](auto& e) { return e.first == f; });
        model.emplace_back(f, value);
        break;
      case 5: {
        HeaderFields moved = std::move(h);
        EXPECT_EQ(h.count(f), 0u);
        h = std::move(moved);
        break;
      }
      case 6: {
        HeaderFields copy = h;
        h = copy;
        break;
      }
      default:
        if (rng() % 16 == 0) {
          h.clear();
          model.clear();
        }
        break;
    }
    for (F g : names) {
      const auto n = static_cast<size_t>(
          std::count_if(model.begin(), model.end(), [&](auto& e) { return e.first == g; }));
      ASSERT_EQ(h.count(g), n) << "step " << step << " field " << http::to_string(g);
      ASSERT_EQ(h.count(http::to_string(g)), n) << "step " << step;
      const auto first =
          std::find_if(model.begin(), model.end(), [&](auto& e) { return e.first == g; });
      ASSERT_EQ(h[g], first == model.end() ? std::string() : first->second) << "step " << step;
    }
  }
}

}  // namespace
}  // namespace sag::session
