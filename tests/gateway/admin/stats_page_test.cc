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

}  // namespace
}  // namespace sag::gateway
