#include "config/yaml_document.h"

#include <yaml-cpp/eventhandler.h>

#include <sstream>
#include <vector>

#include "config/yaml_reader.h"

namespace sag::config {

namespace {

// Finds where each document and its root start, for at most a few documents.
//
// yaml-cpp 0.7's LoadAll never returns when its parser stops consuming input
// (a stray ',' at the top level makes it add empty documents until memory
// runs out: jbeder/yaml-cpp#1040, fixed upstream after 0.7). So the tree is
// built with Load (first document only), and this capped event pass counts
// documents and recognises the stuck parser by two roots at one offset.
class DocumentRoots : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;  // the "---" when there is one
  std::vector<YAML::Mark> roots;

  void OnDocumentStart(const YAML::Mark& m) override {
    starts.push_back(m);
    want_root_ = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { root(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { root(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { root(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    root(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    root(m);
  }
  void OnMapEnd() override {}

 private:
  void root(const YAML::Mark& m) {
    if (want_root_) roots.push_back(m);
    want_root_ = false;
  }
  bool want_root_ = false;
};

Pos pos_of_mark(const YAML::Mark& m) { return {m.line + 1, m.column + 1}; }

// Reports a stuck parser (false: the tree is not to be trusted) or a second
// document (still true: the first is read, so its own errors show too).
bool check_documents(const std::string& text, ErrorLog& log) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentRoots docs;
  for (int n = 0; n < 3 && parser.HandleNextDocument(docs); ++n) {
  }
  const auto& r = docs.roots;
  for (size_t i = 1; i < r.size(); ++i) {
    if (r[i].pos != r[i - 1].pos) continue;
    const auto at = static_cast<size_t>(r[i].pos);
    log.error(pos_of_mark(r[i]),
              "YAML syntax error: unexpected " + (at < text.size() ? quote(text.substr(at, 1)) : std::string("end")));
    return false;
  }
  if (docs.starts.size() > 1) {
    log.error(pos_of_mark(docs.starts[1]), "only one YAML document is allowed (remove the '---')");
  }
  return true;
}

}  // namespace

std::optional<YAML::Node> parse_single_document(const std::string& text, ErrorLog& log) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!check_documents(text, log)) return std::nullopt;
    return root;
  } catch (const YAML::Exception& e) {
    log.error(e.mark.line < 0 ? Pos{} : Pos{e.mark.line + 1, e.mark.column + 1}, "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    log.error({}, std::string("cannot parse the YAML: ") + e.what());
  }
  return std::nullopt;
}

}  // namespace sag::config
