// The admin listener's logic (SPEC §5) without the network: the PUT body
// parser, the escaping writers, basic auth, routing, and the exact metrics
// text; then one real AdminServer on a loopback port.
#include "gateway/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "affinity/server.h"

namespace sag::gateway {
namespace {

using namespace std::chrono_literals;
using affinity::AdminState;

// ---------------------------------------------------------------- the parser

std::optional<admin::ServerPatch> parse(std::string_view body, std::string* error = nullptr) {
  std::string e;
  auto p = admin::parse_server_patch(body, e);
  if (error) *error = e;
  if (p) EXPECT_TRUE(e.empty()) << body;
  else EXPECT_FALSE(e.empty()) << body;
  return p;
}

TEST(ServerPatchTest, AcceptsEveryValidForm) {
  auto p = parse("{}");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->state);
  EXPECT_FALSE(p->weight);

  ASSERT_TRUE(parse(" \t\r\n{ \n } \n"));

  p = parse(R"({"state": "drain"})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, AdminState::kDrain);
  EXPECT_FALSE(p->weight);

  p = parse(R"({"state":"ready"})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, AdminState::kReady);

  p = parse(R"({"weight": 0})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->weight, 0u);
  EXPECT_FALSE(p->state);

  p = parse(R"({"weight": 1000})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->weight, 1000u);

  p = parse(R"({"weight": -0})");  // valid JSON for zero
  ASSERT_TRUE(p);
  EXPECT_EQ(p->weight, 0u);

  p = parse(R"({ "state" : "maint" , "weight" : 5 })");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, AdminState::kMaint);
  EXPECT_EQ(p->weight, 5u);

  p = parse(R"({"weight": 42, "state": "ready"})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, AdminState::kReady);
  EXPECT_EQ(p->weight, 42u);

  // Escapes in keys and values are decoded before comparing.
  p = parse(R"({"st\u0061te": "dr\u0061in", "w\u0065ight": 7})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, AdminState::kDrain);
  EXPECT_EQ(p->weight, 7u);
}

TEST(ServerPatchTest, RejectsEveryBadBody) {
  const std::vector<std::string> bad = {
      // not a JSON object
      "", "   ", "null", "true", "[]", "[{}]", R"("state")", "42", "{", "}",
      // syntax
      R"({"state"})", R"({"state":})", R"({"state" "drain"})", R"({"state":"drain",})",
      R"({,})", R"({"state":"drain" "weight":1})", R"({"state":"drain"} x)",
      R"({"state":"drain"}{})", R"({'state':'drain'})", R"({state:"drain"})",
      R"({"state":"drain")", R"({"state":"drain)", "{\"state\":\"dr\x01ain\"}",
      R"({"state":"dr\xain"})", R"({"state":"\ud800"})", R"({"state":"\udc00"})",
      R"({"state":"\u12"})", R"({"weight":-})", R"({"weight":1.})", R"({"weight":.5})",
      R"({"weight":01})", R"({"weight":+1})", R"({"weight":0x10})",
      // unknown keys (names are case-sensitive)
      R"({"foo":1})", R"({"State":"drain"})", R"({"state":"drain","extra":true})",
      R"({"":1})",
      // wrong types
      R"({"state":1})", R"({"state":null})", R"({"state":true})", R"({"state":["drain"]})",
      R"({"state":{}})", R"({"weight":"10"})", R"({"weight":true})", R"({"weight":null})",
      R"({"weight":[1]})", R"({"weight":10.5})", R"({"weight":1e2})", R"({"weight":10.0})",
      // bad values
      R"({"state":"DRAIN"})", R"({"state":"up"})", R"({"state":""})", R"({"state":"drain "})",
      R"({"weight":-1})", R"({"weight":1001})", R"({"weight":4294967296})",
      R"({"weight":99999999999999999999999999})",
      // duplicates
      R"({"state":"drain","state":"ready"})", R"({"weight":1,"weight":2})",
  };
  for (const auto& body : bad) {
    std::string error;
    EXPECT_FALSE(parse(body, &error)) << "accepted: " << body;
  }
}

TEST(ServerPatchTest, ErrorsSayWhatIsWrong) {
  std::string e;
  parse(R"({"foo":1})", &e);
  EXPECT_NE(e.find("unknown key 'foo'"), std::string::npos) << e;
  parse(R"({"weight":1001})", &e);
  EXPECT_NE(e.find("0 to 1000"), std::string::npos) << e;
  parse(R"({"state":"up"})", &e);
  EXPECT_NE(e.find("ready, drain or maint"), std::string::npos) << e;
  parse("[]", &e);
  EXPECT_NE(e.find("JSON object"), std::string::npos) << e;
}

// --------------------------------------------------------------- the writers

std::string json(std::string_view s) {
  std::string out;
  admin::append_json_string(out, s);
  return out;
}

TEST(JsonWriterTest, Escapes) {
  EXPECT_EQ(json(""), R"("")");
  EXPECT_EQ(json("plain s1-a.b:c"), R"("plain s1-a.b:c")");
  EXPECT_EQ(json("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(json("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(json(std::string_view("\x00\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
  EXPECT_EQ(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

TEST(JsonWriterTest, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(json("a\xff" "b"), R"("a\ufffdb")");
  EXPECT_EQ(json("\xc3"), R"("\ufffd")");                          // truncated
  EXPECT_EQ(json("\xc3(x"), R"("\ufffd(x")");                      // bad continuation
  EXPECT_EQ(json("\xc0\x80"), R"("\ufffd\ufffd")");                // overlong NUL
  EXPECT_EQ(json("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");      // surrogate
  EXPECT_EQ(json("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // > U+10FFFF
  EXPECT_EQ(json("\x80"), R"("\ufffd")");                          // lone continuation
}

TEST(LabelValueTest, Escapes) {
  std::string out;
  admin::append_label_value(out, "a\"b\\c\nd{e}=f,g");
  EXPECT_EQ(out, R"(a\"b\\c\nd{e}=f,g)");
}

TEST(HtmlTest, Escapes) {
  std::string out;
  admin::append_html(out, "<a href=\"x\">'&'</a>");
  EXPECT_EQ(out, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

// ---------------------------------------------------------------- basic auth

TEST(Base64Test, StrictDecoding) {
  EXPECT_EQ(admin::base64_decode(""), "");
  EXPECT_EQ(admin::base64_decode("Zg=="), "f");
  EXPECT_EQ(admin::base64_decode("Zg"), "f");
  EXPECT_EQ(admin::base64_decode("Zm8="), "fo");
  EXPECT_EQ(admin::base64_decode("Zm9v"), "foo");
  EXPECT_EQ(admin::base64_decode("YWRtaW46c2VjcmV0"), "admin:secret");
  EXPECT_EQ(admin::base64_decode("+/+/"), std::string("\xfb\xff\xbf"));
  EXPECT_FALSE(admin::base64_decode("Zg="));    // wrong padding
  EXPECT_FALSE(admin::base64_decode("Z==="));
  EXPECT_FALSE(admin::base64_decode("Z"));      // impossible length
  EXPECT_FALSE(admin::base64_decode("Zh=="));   // non-zero leftover bits
  EXPECT_FALSE(admin::base64_decode("Zm9v!"));
  EXPECT_FALSE(admin::base64_decode("Zm 9v"));
  EXPECT_FALSE(admin::base64_decode("Zm9v\n"));
  EXPECT_FALSE(admin::base64_decode("Zm-_"));   // base64url is not base64
  EXPECT_FALSE(admin::base64_decode("=Zm9"));
}

TEST(BasicAuthTest, ParsesTheHeader) {
  EXPECT_EQ(admin::basic_credentials("Basic YWRtaW46c2VjcmV0"), "admin:secret");
  EXPECT_EQ(admin::basic_credentials("basic YWRtaW46c2VjcmV0"), "admin:secret");
  EXPECT_EQ(admin::basic_credentials("BASIC   YWRtaW46c2VjcmV0  "), "admin:secret");
  EXPECT_EQ(admin::basic_credentials("Basic YTpiOmM="), "a:b:c");  // ':' in the password
  EXPECT_EQ(admin::basic_credentials("Basic YWRtaW46"), "admin:");  // empty password
  EXPECT_FALSE(admin::basic_credentials(""));
  EXPECT_FALSE(admin::basic_credentials("Basic"));
  EXPECT_FALSE(admin::basic_credentials("Basic "));
  EXPECT_FALSE(admin::basic_credentials("BasicYWRtaW46c2VjcmV0"));
  EXPECT_FALSE(admin::basic_credentials("Bearer YWRtaW46c2VjcmV0"));
  EXPECT_FALSE(admin::basic_credentials("Basic YWRtaW4="));  // "admin": no ':'
  EXPECT_FALSE(admin::basic_credentials("Basic !!!!"));
  EXPECT_FALSE(admin::basic_credentials("Basic YWRtaW46c2VjcmV0 extra"));
}

// ------------------------------------------------------------ handler fixture

config::ServerConfig server(const std::string& name, uint16_t port, uint32_t weight = 100) {
  config::ServerConfig s;
  s.name = name;
  s.address = "127.0.0.1:" + std::to_string(port);
  s.endpoint = *config::Endpoint::parse(s.address);
  s.weight = weight;
  return s;
}

std::shared_ptr<config::GatewayConfig> make_config(bool auth) {
  auto cfg = std::make_shared<config::GatewayConfig>();
  config::ListenerConfig https;
  https.name = "https";
  https.tls = config::TlsConfig{};
  https.backend = "app";
  config::ListenerConfig http;
  http.name = "http";
  http.backend = "app";
  cfg->listeners = {https, http};
  config::BackendConfig app;
  app.name = "app";
  app.servers = {server("s1", 9001), server("s2", 9002, 50)};
  config::BackendConfig api;
  api.name = "api";
  api.balance = config::BalanceAlgorithm::kLeastConn;
  api.servers = {server("a1", 9101)};
  cfg->backends = {app, api};
  config::AdminConfig admin;
  admin.bind = "127.0.0.1:0";
  admin.endpoint = *config::Endpoint::parse("127.0.0.1:0", true);
  if (auth) {
    admin.user = "admin";
    admin.password = "secret";
  }
  cfg->admin = admin;
  return cfg;
}

struct Fixture {
  explicit Fixture(bool auth = false, AdminHandler::Hooks hooks = {})
      : config(make_config(auth)), backends(*config), stats(*config),
        handler(config, backends, stats, std::move(hooks)) {}
  affinity::Server& srv(std::string_view b, std::string_view s) {
    return *backends.find(b)->find_server(s);
  }
  AdminResponse get(std::string_view target, std::string_view auth = {}) {
    return handler.handle({"GET", target, auth, {}});
  }
  AdminResponse put(std::string_view target, std::string_view body, std::string_view auth = {}) {
    return handler.handle({"PUT", target, auth, body});
  }

  std::shared_ptr<config::GatewayConfig> config;
  affinity::BackendSet backends;
  session::GatewayStats stats;
  AdminHandler handler;
};

constexpr std::string_view kGoodAuth = "Basic YWRtaW46c2VjcmV0";  // admin:secret

TEST(AdminHandlerTest, Routes) {
  Fixture f;
  auto r = f.get("/healthz");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "ok\n");
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");

  r = f.get("/");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("<meta http-equiv=\"refresh\" content=\"5\">"), std::string::npos);

  r = f.get("/metrics?x=1");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");

  r = f.get("/api/backends");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "application/json");

  r = f.get("/api/backends/app/servers/s2");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body.rfind(R"({"name": "s2", "address": "127.0.0.1:9002")", 0), 0u) << r.body;

  for (auto path : {"/nope", "/api", "/api/backends/", "/api/backends/app",
                    "/api/backends/app/servers", "/api/backends/app/servers/",
                    "/api/backends/app/servers/s1/x", "/metrics/", "/healthz/x"}) {
    r = f.get(path);
    EXPECT_EQ(r.status, 404u) << path;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(r.body, "{\"error\": \"not found\"}\n");
  }
  EXPECT_EQ(f.get("/api/backends/nope/servers/s1").status, 404u);
  EXPECT_EQ(f.get("/api/backends/app/servers/nope").status, 404u);
}

TEST(AdminHandlerTest, OtherMethodsAre405WithAllow) {
  Fixture f;
  for (auto path : {"/", "/metrics", "/api/backends", "/healthz"}) {
    for (auto method : {"POST", "PUT", "DELETE", "PATCH"}) {
      auto r = f.handler.handle({method, path, {}, {}});
      EXPECT_EQ(r.status, 405u) << method << " " << path;
      EXPECT_EQ(r.allow, "GET, HEAD");
    }
  }
  auto r = f.handler.handle({"POST", "/api/backends/app/servers/s1", {}, "{}"});
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(r.allow, "GET, HEAD, PUT");
  r = f.handler.handle({"DELETE", "/api/backends/app/servers/s1", {}, {}});
  EXPECT_EQ(r.status, 405u);
}

TEST(AdminHandlerTest, HeadIsGetWithoutBody) {
  Fixture f;
  auto r = f.handler.handle({"HEAD", "/metrics", {}, {}});
  EXPECT_EQ(r.status, 200u);
  EXPECT_TRUE(r.head);
  EXPECT_FALSE(r.body.empty());  // the server sends its length only
  EXPECT_FALSE(f.get("/metrics").head);
  r = f.handler.handle({"HEAD", "/nope", {}, {}});
  EXPECT_EQ(r.status, 404u);
  EXPECT_TRUE(r.head);
}

TEST(AdminHandlerTest, PutChangesStateAndWeight) {
  std::vector<std::string> changes;
  AdminHandler::Hooks hooks;
  hooks.on_change = [&](const affinity::Backend& b, const affinity::Server& s, AdminState state,
                        uint32_t weight) {
    changes.push_back(b.name() + "/" + s.name() + " " + affinity::to_string(state) + " " +
                      std::to_string(weight));
  };
  Fixture f(false, hooks);
  auto& s1 = f.srv("app", "s1");

  auto r = f.put("/api/backends/app/servers/s1", R"({"state": "drain"})");
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(s1.admin_state(), AdminState::kDrain);
  EXPECT_EQ(s1.weight(), 100u);
  EXPECT_NE(r.body.find(R"("state": "drain")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("weight": 100)"), std::string::npos) << r.body;

  r = f.put("/api/backends/app/servers/s1", R"({"weight": 7})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(s1.weight(), 7u);
  EXPECT_EQ(s1.admin_state(), AdminState::kDrain);
  EXPECT_NE(r.body.find(R"("weight": 7)"), std::string::npos) << r.body;

  // Out of maint: the slow-start ramp restarts.
  EXPECT_EQ(s1.up_since(), std::chrono::steady_clock::time_point{});
  r = f.put("/api/backends/app/servers/s1", R"({"state": "maint", "weight": 0})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(s1.admin_state(), AdminState::kMaint);
  EXPECT_EQ(s1.weight(), 0u);
  EXPECT_EQ(s1.up_since(), std::chrono::steady_clock::time_point{});
  const auto before = std::chrono::steady_clock::now();
  r = f.put("/api/backends/app/servers/s1", R"({"state": "ready"})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_GE(s1.up_since(), before);

  // An empty object changes nothing and still answers the server.
  r = f.put("/api/backends/app/servers/s1", "{}");
  EXPECT_EQ(r.status, 200u);
  // The hook gets the values each PUT left, given keys and kept ones alike;
  // a PUT that names a value the server already has still publishes it.
  r = f.put("/api/backends/app/servers/s1", R"({"weight": 0})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(changes, (std::vector<std::string>{"app/s1 drain 100", "app/s1 drain 7", "app/s1 maint 0",
                                               "app/s1 ready 0", "app/s1 ready 0"}));

  // The other servers are untouched.
  EXPECT_EQ(f.srv("app", "s2").admin_state(), AdminState::kReady);
  EXPECT_EQ(f.srv("app", "s2").weight(), 50u);
}

TEST(AdminHandlerTest, PutErrors) {
  Fixture f;
  auto r = f.put("/api/backends/nope/servers/s1", R"({"state": "drain"})");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.body, "{\"error\": \"unknown backend 'nope'\"}\n");
  r = f.put("/api/backends/app/servers/a1", R"({"state": "drain"})");  // a1 is in api
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.body, "{\"error\": \"unknown server 'a1' in backend 'app'\"}\n");
  r = f.put("/api/backends/app/servers/s1", R"({"state": "drain", "weight": 2000})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body.rfind("{\"error\": \"", 0), 0u);
  // Nothing of a rejected body is applied.
  EXPECT_EQ(f.srv("app", "s1").admin_state(), AdminState::kReady);
  r = f.put("/api/backends/app/servers/s1", "");
  EXPECT_EQ(r.status, 400u);
  // Percent-encoded names are decoded.
  r = f.put("/api/backends/%61pp/servers/s%31", R"({"weight": 3})");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(f.srv("app", "s1").weight(), 3u);
  r = f.put("/api/backends/app/servers/s%3", "{}");
  EXPECT_EQ(r.status, 404u);
}

TEST(AdminHandlerTest, BackendsJson) {
  AdminHandler::Hooks hooks;
  hooks.last_check = [](const affinity::Server& s) {
    return s.name() == "s1" ? std::string("200 in 3ms") : std::string();
  };
  Fixture f(false, hooks);
  auto& s1 = f.srv("app", "s1");
  auto& s2 = f.srv("app", "s2");
  s1.request_started();
  s1.request_started();
  s1.request_finished();
  f.stats.request_done(0, &s1, 200, 1ms, true);
  f.stats.request_done(0, &s1, 302, 1ms, false);
  f.stats.request_done(0, &s1, 503, 1ms, true);  // the server's own 503
  s1.record_response_time(1500us);
  s2.set_healthy(false);
  s2.set_admin_state(AdminState::kMaint);

  auto r = f.get("/api/backends");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.body,
            "{\"backends\": ["
            "{\"name\": \"app\", \"balance\": \"roundrobin\", \"servers\": ["
            "{\"name\": \"s1\", \"address\": \"127.0.0.1:9001\", \"state\": \"ready\", "
            "\"health\": \"up\", \"weight\": 100, \"active\": 1, \"requests\": 2, \"pinned\": 2, "
            "\"last_check\": \"200 in 3ms\", \"backup\": false, \"ejected\": false, "
            "\"responses\": {\"1xx\": 0, \"2xx\": 1, \"3xx\": 1, \"4xx\": 0, \"5xx\": 1}, "
            "\"response_time_ms\": 1.500}, "
            "{\"name\": \"s2\", \"address\": \"127.0.0.1:9002\", \"state\": \"maint\", "
            "\"health\": \"down\", \"weight\": 50, \"active\": 0, \"requests\": 0, \"pinned\": 0, "
            "\"last_check\": \"-\", \"backup\": false, \"ejected\": false, "
            "\"responses\": {\"1xx\": 0, \"2xx\": 0, \"3xx\": 0, \"4xx\": 0, \"5xx\": 0}, "
            "\"response_time_ms\": null}]}, "
            "{\"name\": \"api\", \"balance\": \"leastconn\", \"servers\": ["
            "{\"name\": \"a1\", \"address\": \"127.0.0.1:9101\", \"state\": \"ready\", "
            "\"health\": \"up\", \"weight\": 100, \"active\": 0, \"requests\": 0, \"pinned\": 0, "
            "\"last_check\": \"-\", \"backup\": false, \"ejected\": false, "
            "\"responses\": {\"1xx\": 0, \"2xx\": 0, \"3xx\": 0, \"4xx\": 0, \"5xx\": 0}, "
            "\"response_time_ms\": null}]}]}\n");
  // An ejected server is down too.
  f.srv("api", "a1").eject(std::chrono::steady_clock::now());
  r = f.get("/api/backends/api/servers/a1");
  EXPECT_NE(r.body.find("\"health\": \"down\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"ejected\": true"), std::string::npos) << r.body;
}

TEST(AdminHandlerTest, AuthOnEveryPathButHealthz) {
  Fixture f(/*auth=*/true);
  EXPECT_EQ(f.get("/healthz").status, 200u);
  EXPECT_EQ(f.get("/healthz", "Basic bad").status, 200u);
  const std::vector<std::string_view> bad_auth = {
      "", "Basic YWRtaW46c2VjcmV0MQ==" /* admin:secret1 */, "Basic YWRtaW46c2VjcmU=" /* admin:secre */,
      "Basic YWRtaW46" /* admin: */, "Basic QWRtaW46c2VjcmV0" /* Admin:secret */,
      "Bearer YWRtaW46c2VjcmV0", "Basic", "YWRtaW46c2VjcmV0"};
  for (auto path : {"/", "/metrics", "/api/backends", "/api/backends/app/servers/s1", "/nope"}) {
    for (auto a : bad_auth) {
      auto r = f.get(path, a);
      EXPECT_EQ(r.status, 401u) << path << " with " << a;
      EXPECT_TRUE(r.challenge);
      EXPECT_EQ(r.content_type, "application/json");
      EXPECT_EQ(r.body, "{\"error\": \"authentication required\"}\n");
    }
    EXPECT_EQ(f.get(path, kGoodAuth).status, std::string_view(path) == "/nope" ? 404u : 200u)
        << path;
    EXPECT_FALSE(f.get(path, kGoodAuth).challenge);
  }
  // A PUT without auth changes nothing.
  auto r = f.put("/api/backends/app/servers/s1", R"({"state": "maint"})");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(f.srv("app", "s1").admin_state(), AdminState::kReady);
  r = f.put("/api/backends/app/servers/s1", R"({"state": "maint"})", kGoodAuth);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(f.srv("app", "s1").admin_state(), AdminState::kMaint);
}

TEST(AdminHandlerTest, NoAuthWithoutPassword) {
  auto cfg = make_config(false);
  cfg->admin->user = "admin";  // a user without password_file: no auth
  affinity::BackendSet backends(*cfg);
  session::GatewayStats stats(*cfg);
  AdminHandler h(cfg, backends, stats, {});
  EXPECT_EQ(h.handle({"GET", "/metrics", {}, {}}).status, 200u);
}

TEST(AdminHandlerTest, DrainingHealthz) {
  Fixture f;
  f.handler.set_draining(true);
  auto r = f.get("/healthz");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.body, "draining\n");
}

// ------------------------------------------------------------------- metrics

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(MetricsTest, ExactText) {
  Fixture f;
  auto& s1 = f.srv("app", "s1");
  auto& s2 = f.srv("app", "s2");
  auto& a1 = f.srv("api", "a1");
  f.stats.request_done(0, &s1, 200, 2ms);
  f.stats.request_done(0, &s1, 200, 2ms, true);
  f.stats.request_done(0, &s1, 404, 30ms);
  f.stats.request_done(0, nullptr, 503, 500us);
  f.stats.request_done(1, &a1, 201, 12s);
  f.stats.request_done(session::GatewayStats::kNoBackend, nullptr, 400, 100us);
  f.stats.retry(0);
  f.stats.retry(0);
  f.stats.connection_opened(0);
  f.stats.connection_opened(0);
  f.stats.connection_closed(0);
  f.stats.connection_refused(1);
  f.stats.connection_refused(1);
  f.stats.tls_handshake(0, true);
  f.stats.tls_handshake(0, true);
  f.stats.tls_handshake(0, false);
  f.stats.affinity_store_error();
  auto& pc = f.backends.find("app")->persistence_counters();
  pc.hit += 3;
  pc.miss += 2;
  pc.redispatch += 1;
  pc.expired += 4;
  s2.set_healthy(false);

  const std::string expected =
      "# HELP gateway_requests_total Requests answered, by backend, server and exact status; "
      "server=\"-\": the gateway answered itself.\n"
      "# TYPE gateway_requests_total counter\n"
      "gateway_requests_total{backend=\"app\",server=\"s1\",code=\"200\"} 2\n"
      "gateway_requests_total{backend=\"app\",server=\"s1\",code=\"404\"} 1\n"
      "gateway_requests_total{backend=\"app\",server=\"-\",code=\"503\"} 1\n"
      "gateway_requests_total{backend=\"api\",server=\"a1\",code=\"201\"} 1\n"
      "gateway_requests_total{backend=\"-\",server=\"-\",code=\"400\"} 1\n"
      "# HELP gateway_request_duration_seconds Time from the request's first byte (or the "
      "connection's accept) to the end of its response.\n"
      "# TYPE gateway_request_duration_seconds histogram\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.001\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.005\"} 3\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.01\"} 3\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.025\"} 3\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.05\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.1\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.25\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"0.5\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"1\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"2.5\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"5\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"10\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"app\",le=\"+Inf\"} 4\n"
      "gateway_request_duration_seconds_sum{backend=\"app\"} 0.034500\n"
      "gateway_request_duration_seconds_count{backend=\"app\"} 4\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.001\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.005\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.01\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.025\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.05\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.1\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.25\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"0.5\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"1\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"2.5\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"5\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"10\"} 0\n"
      "gateway_request_duration_seconds_bucket{backend=\"api\",le=\"+Inf\"} 1\n"
      "gateway_request_duration_seconds_sum{backend=\"api\"} 12.000000\n"
      "gateway_request_duration_seconds_count{backend=\"api\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.001\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.005\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.01\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.025\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.05\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.1\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.25\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"0.5\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"1\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"2.5\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"5\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"10\"} 1\n"
      "gateway_request_duration_seconds_bucket{backend=\"-\",le=\"+Inf\"} 1\n"
      "gateway_request_duration_seconds_sum{backend=\"-\"} 0.000100\n"
      "gateway_request_duration_seconds_count{backend=\"-\"} 1\n"
      "# HELP gateway_server_up 1 when the server is up (healthy and not ejected), else 0.\n"
      "# TYPE gateway_server_up gauge\n"
      "gateway_server_up{backend=\"app\",server=\"s1\"} 1\n"
      "gateway_server_up{backend=\"app\",server=\"s2\"} 0\n"
      "gateway_server_up{backend=\"api\",server=\"a1\"} 1\n"
      "# HELP gateway_connections_active Open client connections.\n"
      "# TYPE gateway_connections_active gauge\n"
      "gateway_connections_active{listener=\"https\"} 1\n"
      "gateway_connections_active{listener=\"http\"} 0\n"
      "# HELP gateway_connections_refused_total Client connections closed at once because "
      "limits.max_connections was reached.\n"
      "# TYPE gateway_connections_refused_total counter\n"
      "gateway_connections_refused_total{listener=\"https\"} 0\n"
      "gateway_connections_refused_total{listener=\"http\"} 2\n"
      "# HELP gateway_tls_handshakes_total TLS handshakes on client connections, by result.\n"
      "# TYPE gateway_tls_handshakes_total counter\n"
      "gateway_tls_handshakes_total{listener=\"https\",result=\"ok\"} 2\n"
      "gateway_tls_handshakes_total{listener=\"https\",result=\"failed\"} 1\n"
      "# HELP gateway_persistence_total Persistence decisions, by outcome.\n"
      "# TYPE gateway_persistence_total counter\n"
      "gateway_persistence_total{backend=\"app\",result=\"hit\"} 3\n"
      "gateway_persistence_total{backend=\"app\",result=\"miss\"} 2\n"
      "gateway_persistence_total{backend=\"app\",result=\"redispatch\"} 1\n"
      "gateway_persistence_total{backend=\"app\",result=\"invalid\"} 0\n"
      "gateway_persistence_total{backend=\"app\",result=\"expired\"} 4\n"
      "gateway_persistence_total{backend=\"api\",result=\"hit\"} 0\n"
      "gateway_persistence_total{backend=\"api\",result=\"miss\"} 0\n"
      "gateway_persistence_total{backend=\"api\",result=\"redispatch\"} 0\n"
      "gateway_persistence_total{backend=\"api\",result=\"invalid\"} 0\n"
      "gateway_persistence_total{backend=\"api\",result=\"expired\"} 0\n"
      "# HELP gateway_retries_total Requests sent again to another server after a connection "
      "failure.\n"
      "# TYPE gateway_retries_total counter\n"
      "gateway_retries_total{backend=\"app\"} 2\n"
      "gateway_retries_total{backend=\"api\"} 0\n"
      "# HELP gateway_affinity_store_errors_total Affinity store operations that failed (e.g. "
      "Redis unreachable).\n"
      "# TYPE gateway_affinity_store_errors_total counter\n"
      "gateway_affinity_store_errors_total 1\n";
  const std::string got = f.handler.metrics();
  // Line by line first, for a readable failure.
  const auto e = lines(expected), g = lines(got);
  for (size_t i = 0; i < std::min(e.size(), g.size()); ++i) ASSERT_EQ(g[i], e[i]) << "line " << i;
  EXPECT_EQ(got, expected);
}

TEST(MetricsTest, EveryLineIsWellFormed) {
  Fixture f;
  f.stats.request_done(0, &f.srv("app", "s1"), 200, 2ms);
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? [0-9]+(\.[0-9]+)?$)");
  const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::string family;
  for (const auto& l : lines(f.handler.metrics())) {
    if (l.starts_with("#")) {
      EXPECT_TRUE(std::regex_match(l, comment)) << l;
    } else {
      EXPECT_TRUE(std::regex_match(l, sample)) << l;
    }
  }
}

// -------------------------------------------------------------- stats page

TEST(StatsPageTest, OneRowPerServerEscaped) {
  AdminHandler::Hooks hooks;
  hooks.last_check = [](const affinity::Server&) { return std::string("<b>timeout</b>"); };
  Fixture f(false, hooks);
  for (int i = 0; i < 99; ++i) f.stats.request_done(0, &f.srv("app", "s1"), 200, 1ms);
  f.stats.request_done(0, &f.srv("app", "s1"), 500, 900ms);
  const std::string page = f.handler.stats_page();
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("<meta http-equiv=\"refresh\" content=\"5\">"), std::string::npos);
  EXPECT_EQ(page.find("<b>timeout</b>"), std::string::npos);
  EXPECT_NE(page.find("&lt;b&gt;timeout&lt;/b&gt;"), std::string::npos);
  auto count = [&](std::string_view needle) {
    size_t n = 0;
    for (size_t p = 0; (p = page.find(needle, p)) != std::string::npos; ++p) ++n;
    return n;
  };
  EXPECT_EQ(count("<tr class=\"ready\"><td class=\"l\">s1</td>"), 1u);
  EXPECT_EQ(count("<tr class=\"ready\"><td class=\"l\">s2</td>"), 1u);
  EXPECT_EQ(count("<tr class=\"ready\"><td class=\"l\">a1</td>"), 1u);
  EXPECT_EQ(count("<tr class=\"gw\">"), 2u);  // the gateway's own answers, per backend
  EXPECT_EQ(count("<table>"), 2u);
  EXPECT_NE(page.find("<h2>backend app"), std::string::npos);
  EXPECT_NE(page.find("<h2>backend api"), std::string::npos);
  // p50 ~1 ms, p99 ~1 ms (99 of 100 samples), not 900 ms.
  EXPECT_NE(page.find("</td><td>1.0"), std::string::npos) << page;
}

// ---------------------------------------------------------- the real server

struct RawClient {
  explicit RawClient(uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { ::close(fd); }
  void send(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      s.remove_prefix(static_cast<size_t>(n));
    }
  }
  // Reads one response (head + Content-Length body).
  std::string response() {
    for (;;) {
      const size_t end = buf.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t len = 0;
        const size_t cl = buf.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) len = std::stoul(buf.substr(cl + 16));
        if (buf.size() >= end + 4 + len) {
          std::string r = buf.substr(0, end + 4 + len);
          buf.erase(0, end + 4 + len);
          return r;
        }
      }
      char tmp[4096];
      const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) {
        std::string r = buf;
        buf.clear();
        return r;
      }
      buf.append(tmp, static_cast<size_t>(n));
    }
  }
  bool closed() {
    char c;
    return ::recv(fd, &c, 1, 0) == 0;
  }
  int fd;
  bool connected = false;
  std::string buf;
};

TEST(AdminServerTest, ServesOverHttp) {
  auto cfg = make_config(true);
  affinity::BackendSet backends(*cfg);
  session::GatewayStats stats(*cfg);
  std::string error;
  auto server = AdminServer::start(cfg, backends, stats, {}, error);
  ASSERT_TRUE(server) << error;
  ASSERT_NE(server->port(), 0);

  RawClient c(server->port());
  ASSERT_TRUE(c.connected);
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Cache-Control: no-store\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos) << r;
  EXPECT_TRUE(r.ends_with("\r\n\r\nok\n")) << r;

  // Same connection (keep-alive): auth required.
  c.send("GET /api/backends HTTP/1.1\r\nHost: x\r\n\r\n");
  r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("WWW-Authenticate: Basic realm=\"sag\"\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Content-Type: application/json\r\n"), std::string::npos) << r;

  // A PUT with a body, then a HEAD (length without body).
  const std::string body = R"({"state": "drain"})";
  c.send("PUT /api/backends/app/servers/s2 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
         "YWRtaW46c2VjcmV0\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body);
  r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("\"state\": \"drain\""), std::string::npos) << r;
  EXPECT_EQ(backends.find("app")->find_server("s2")->admin_state(), AdminState::kDrain);

  c.send("HEAD /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46c2VjcmV0\r\n\r\n");
  const size_t before = c.buf.size();
  (void)before;
  // A HEAD response has a Content-Length but no body: read the head only.
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos) {
    char tmp[4096];
    ssize_t n = ::recv(c.fd, tmp, sizeof tmp, 0);
    ASSERT_GT(n, 0);
    head.append(tmp, static_cast<size_t>(n));
  }
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
  EXPECT_TRUE(head.ends_with("\r\n\r\n")) << "no body after a HEAD head: " << head;

  // Expect: 100-continue is honoured.
  c.send("PUT /api/backends/app/servers/s2 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
         "YWRtaW46c2VjcmV0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  r = c.response();
  EXPECT_EQ(r, "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("{}");
  r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;

  // Connection: close is honoured.
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_TRUE(c.closed());

  // Bodies are bounded: 413, then close.
  RawClient big(server->port());
  big.send("PUT /api/backends/app/servers/s2 HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n");
  big.send(std::string(70000, ' '));
  r = big.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 413 ", 0), 0u) << r;

  // Garbage: 400, then close.
  RawClient junk(server->port());
  junk.send("GET / HTTP/1.1\r\nBad Header\r\n\r\n");
  r = junk.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 400 ", 0), 0u) << r;
  EXPECT_TRUE(junk.closed());

  // Huge head: 431.
  RawClient huge(server->port());
  huge.send("GET / HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n");
  r = huge.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 431 ", 0), 0u) << r;

  server->stop();
  server->stop();  // idempotent
  RawClient after(server->port());
  EXPECT_FALSE(after.connected);
}

// 64 connections at most: at the limit a new connection replaces the one
// that has waited longest for its request, so idle and half-sent requests
// never keep /healthz from answering (admin_connections.h).
TEST(AdminServerTest, WaitingConnectionsGiveWayToNewOnes) {
  auto cfg = make_config(false);
  affinity::BackendSet backends(*cfg);
  session::GatewayStats stats(*cfg);
  std::string error;
  auto server = AdminServer::start(cfg, backends, stats, {}, error);
  ASSERT_TRUE(server) << error;

  // A keep-alive client that has just been answered: the newest waiting.
  auto ask_healthz = [](RawClient& c) {
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    return c.response();
  };
  std::vector<std::unique_ptr<RawClient>> flood;
  for (int i = 0; i < 40; ++i) flood.push_back(std::make_unique<RawClient>(server->port()));
  RawClient kept(server->port());
  ASSERT_EQ(ask_healthz(kept).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  for (int i = 0; i < 100; ++i) {
    flood.push_back(std::make_unique<RawClient>(server->port()));
    ASSERT_TRUE(flood.back()->connected);
    if (i % 3 == 0) flood.back()->send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  }
  for (int round = 0; round < 5; ++round) {
    RawClient probe(server->port());
    const auto t0 = std::chrono::steady_clock::now();
    const std::string r = ask_healthz(probe);
    EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  }
  // The oldest were closed to make room, oldest first; `kept` came after
  // the first 40 and before 100 others, so it went too.
  EXPECT_TRUE(flood.front()->closed());
  EXPECT_TRUE(flood[39]->closed());
  EXPECT_TRUE(kept.closed());
  // The most recent ones are still open: a half-sent head gets no answer yet.
  RawClient& last = *flood.back();
  timeval tv{0, 200000};
  setsockopt(last.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c;
  EXPECT_EQ(::recv(last.fd, &c, 1, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
  server->stop();
}

TEST(AdminServerTest, BindFailureIsReported) {
  auto cfg = make_config(false);
  affinity::BackendSet backends(*cfg);
  session::GatewayStats stats(*cfg);
  std::string error;
  auto first = AdminServer::start(cfg, backends, stats, {}, error);
  ASSERT_TRUE(first) << error;
  auto cfg2 = make_config(false);
  cfg2->admin->endpoint.port = first->port();
  cfg2->admin->bind = "127.0.0.1:" + std::to_string(first->port());
  auto second = AdminServer::start(cfg2, backends, stats, {}, error);
  EXPECT_FALSE(second);
  EXPECT_NE(error.find("bind 127.0.0.1:"), std::string::npos) << error;

  auto none = std::make_shared<config::GatewayConfig>();
  EXPECT_FALSE(AdminServer::start(none, backends, stats, {}, error));
}

}  // namespace
}  // namespace sag::gateway
