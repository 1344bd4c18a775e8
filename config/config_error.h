// A configuration problem with its position, and the list that collects them.
//
// The loader never stops at the first problem: every reader reports into one
// ErrorLog, and `gateway --check` prints them all, in file order, as
// FILE:LINE:COL: message.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sag::config {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when not tied to a position
  int column = 0;  // 1-based
  std::string message;
  std::string to_string() const;  // "FILE:LINE:COL: message"
};

// A place in the YAML text.
struct Pos {
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
};

class ErrorLog {
 public:
  explicit ErrorLog(std::string file) : file_(std::move(file)) {}

  void error(Pos p, std::string message) { errors_.push_back({file_, p.line, p.column, std::move(message)}); }
  bool empty() const { return errors_.empty(); }
  const std::string& file() const { return file_; }

  // The errors in file order; errors at one position keep the order they
  // were reported in. Empties the log.
  std::vector<ConfigError> take_sorted();

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

}  // namespace sag::config
