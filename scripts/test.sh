#!/usr/bin/env bash
# Builds Vellum and runs every test: the Release build, then the same tests
# under AddressSanitizer + UndefinedBehaviorSanitizer. Exit status is non-zero
# if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${VELLUM_JOBS:-2}"

bash scripts/deps.sh

echo "== Release build and tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

if [ "${VELLUM_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== ASan+UBSan build and tests"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DVELLUM_SANITIZE=ON -DVELLUM_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j "$jobs"
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
fi
