// AdminHandler without the network: routing, auth, the API and /healthz.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/gateway/admin/admin_test_support.h"

namespace sag::gateway {
namespace {

using namespace std::chrono_literals;
using affinity::AdminState;
using admin_test::Fixture;
using admin_test::kGoodAuth;
using admin_test::make_config;

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

}  // namespace
}  // namespace sag::gateway
