// GET /: the statistics page.
#include "gateway/admin/stats_page.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/gateway/admin/admin_test_support.h"

namespace sag::gateway {
namespace {

using namespace std::chrono_literals;
using admin_test::Fixture;

size_t occurrences(const std::string& text, std::string_view needle) {
  size_t n = 0;
  for (size_t p = 0; (p = text.find(needle, p)) != std::string::npos; ++p) ++n;
  return n;
}

TEST(HtmlTest, Escapes) {
  std::string out;
  admin::append_html(out, "<a href=\"x\">'&'</a>");
  EXPECT_EQ(out, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

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
  auto count = [&](std::string_view needle) { return occurrences(page, needle); };
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

// A backend of 30 servers (issue 15): one row each, a summary line that
// counts the states, the legend, and a page that stays small.
TEST(StatsPageTest, ThirtyServersReadAtAGlance) {
  auto cfg = std::make_shared<config::GatewayConfig>();
  config::BackendConfig b;
  b.name = "big";
  for (int i = 0; i < 30; ++i) {
    config::ServerConfig sc;
    sc.name = "srv" + std::to_string(i);
    sc.address = "10.0.0." + std::to_string(i + 1) + ":8080";
    sc.endpoint = *config::Endpoint::parse(sc.address);
    b.servers.push_back(sc);
  }
  cfg->backends = {b};
  affinity::BackendSet backends(*cfg);
  session::GatewayStats stats(*cfg);
  AdminHandler handler(cfg, backends, stats, {});
  auto* big = backends.find("big");
  big->find_server("srv3")->set_healthy(false);
  big->find_server("srv7")->set_healthy(false);
  big->find_server("srv10")->set_admin_state(affinity::AdminState::kDrain);
  big->find_server("srv11")->set_admin_state(affinity::AdminState::kMaint);
  for (int i = 0; i < 30; ++i) stats.request_done(0, big->servers()[i], 200, 2ms);

  const std::string page = handler.stats_page();
  auto count = [&](std::string_view needle) { return occurrences(page, needle); };
  EXPECT_EQ(count("<td class=\"l\">srv"), 30u);
  EXPECT_EQ(count("<tr class=\"down\">"), 2u);
  EXPECT_EQ(count("<tr class=\"drain\">"), 1u);
  EXPECT_EQ(count("<tr class=\"maint\">"), 1u);
  EXPECT_NE(page.find("<p class=\"sum\">30 servers: 28 up, 2 down; 1 drain, 1 maint</p>"),
            std::string::npos)
      << page.substr(0, 2000);
  // Rows in file order.
  EXPECT_LT(page.find(">srv2<"), page.find(">srv20<"));
  EXPECT_LT(page.find(">srv9<"), page.find(">srv10<"));
  // The legend explains the colours and the columns; the head stays in view.
  EXPECT_NE(page.find("<b>Rows</b>"), std::string::npos);
  EXPECT_NE(page.find("drain: keeps its sessions"), std::string::npos);
  EXPECT_NE(page.find("<b>Columns</b>"), std::string::npos);
  EXPECT_NE(page.find("position:sticky"), std::string::npos);
  EXPECT_LT(page.size(), 32u * 1024u);
}

// A tcp backend: connections instead of requests and statuses, bytes in
// the heading.
TEST(StatsPageTest, TcpBackendShowsConnections) {
  auto cfg = std::make_shared<config::GatewayConfig>();
  config::BackendConfig b;
  b.name = "redis";
  b.mode = config::ProxyMode::kTcp;
  config::ServerConfig sc;
  sc.name = "r1";
  sc.address = "127.0.0.1:6379";
  sc.endpoint = *config::Endpoint::parse(sc.address);
  b.servers = {sc};
  cfg->backends = {b};
  affinity::BackendSet backends(*cfg);
  session::GatewayStats stats(*cfg);
  AdminHandler handler(cfg, backends, stats, {});
  stats.tcp_done(0, 0, 120, 4096);
  stats.tcp_done(0, 0, 5, 7);
  const std::string page = handler.stats_page();
  EXPECT_NE(page.find("<h2>backend redis <small>(tcp, roundrobin;"), std::string::npos) << page;
  EXPECT_NE(page.find("bytes in 125, out 4103"), std::string::npos);
  EXPECT_NE(page.find("<th>open</th><th>connections</th>"), std::string::npos);
  EXPECT_EQ(page.find("<th>2xx</th>"), std::string::npos);
  EXPECT_NE(page.find("<td>0</td><td>2</td>"), std::string::npos) << "open 0, 2 connections";
}

}  // namespace
}  // namespace sag::gateway
