#!/usr/bin/env bash
# The whole suite under ASan+UBSan, built with clang 14 at -O1 (see docs/dependencies.md:
# far cheaper than g++ with sanitizers), plus libFuzzer targets that replay
# their corpora and fuzz for SAG_FUZZ_SECONDS each (10 by default: CI's
# 25-minute budget for build + tests was reached at 20; longer runs by hand,
# e.g. SAG_FUZZ_SECONDS=300 tests/sanitize.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/install-deps
jobs=$(nproc)
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DSAG_SANITIZE=ON -DSAG_FUZZ=ON -DSAG_WERROR=ON \
  -DSAG_FUZZ_SECONDS="${SAG_FUZZ_SECONDS:-10}" >/dev/null
cmake --build build-asan -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export SAG_SANITIZED=1
(cd build-asan && ctest -LE bench --output-on-failure --timeout 600 -j "$jobs")
