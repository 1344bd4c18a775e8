#!/usr/bin/env bash
# Every test: installs what is missing, builds Release and runs the whole
# suite (unit, integration, fuzz corpus replay; not the `bench` label, which
# `ctest -L bench` runs), then builds with clang
# ASan+UBSan (-O1) and runs the whole suite again, fuzzing each target for a
# bounded time. SAG_SKIP_SANITIZE=1 runs only the first half.
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/install-deps
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSAG_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest -LE bench --output-on-failure --timeout 300 -j "$jobs")

if [ "${SAG_SKIP_SANITIZE:-0}" != 1 ]; then
  tests/sanitize.sh
fi
