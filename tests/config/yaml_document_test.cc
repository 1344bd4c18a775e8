// parse_single_document: one document, syntax errors with their position,
// and the yaml-cpp 0.7 parser that stops consuming input (jbeder/yaml-cpp#1040).
#include "config/yaml_document.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sag::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> errors_of(ErrorLog& log) {
  std::vector<std::string> out;
  for (const auto& e : log.take_sorted()) out.push_back(e.to_string());
  return out;
}

TEST(YamlDocument, OneDocument) {
  ErrorLog log("t.yaml");
  auto root = parse_single_document("a: 1\nb: [x]\n", log);
  ASSERT_TRUE(root);
  EXPECT_TRUE(root->IsMap());
  EXPECT_EQ((*root)["a"].Scalar(), "1");
  EXPECT_THAT(errors_of(log), IsEmpty());
}

TEST(YamlDocument, LeadingMarkerIsFine) {
  ErrorLog log("t.yaml");
  auto root = parse_single_document("---\na: 1\n", log);
  ASSERT_TRUE(root);
  EXPECT_THAT(errors_of(log), IsEmpty());
}

TEST(YamlDocument, EmptyTextIsANullRoot) {
  ErrorLog log("t.yaml");
  auto root = parse_single_document("", log);
  ASSERT_TRUE(root);
  EXPECT_TRUE(root->IsNull());
  EXPECT_THAT(errors_of(log), IsEmpty());
}

TEST(YamlDocument, SecondDocumentReportedFirstStillRead) {
  ErrorLog log("t.yaml");
  auto root = parse_single_document("a: 1\n---\nb: 2\n", log);
  ASSERT_TRUE(root);
  EXPECT_EQ((*root)["a"].Scalar(), "1");
  EXPECT_FALSE((*root)["b"]);
  EXPECT_THAT(errors_of(log), ElementsAre("t.yaml:2:1: only one YAML document is allowed (remove the '---')"));
}

TEST(YamlDocument, SyntaxErrorHasItsPosition) {
  ErrorLog log("t.yaml");
  EXPECT_FALSE(parse_single_document("a: [1, 2\n", log));
  const auto errors = errors_of(log);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::StartsWith("t.yaml:"));
  EXPECT_THAT(errors[0], ::testing::HasSubstr(": YAML syntax error: "));
}

TEST(YamlDocument, StuckParserEndsWithAnError) {
  // A stray ',' at the top level: yaml-cpp 0.7's LoadAll would loop forever.
  ErrorLog log("t.yaml");
  EXPECT_FALSE(parse_single_document("a: 1\n,\n", log));
  const auto errors = errors_of(log);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::HasSubstr("YAML syntax error"));
}

}  // namespace
}  // namespace sag::config
