#!/usr/bin/env bash
# Installs what is missing, builds Release and starts vellumd on the embedded
# default data directory ./vellum-data, listening on 127.0.0.1:7410 (loopback
# only: no credentials are configured). Ctrl-C / SIGTERM stops it cleanly.
#
# Environment: VELLUM_LISTEN (default 127.0.0.1:7410), VELLUM_DATA (default
# vellum-data), VELLUM_JOBS (build parallelism, default 2). Extra arguments
# go to vellumd (e.g. --auth tokens.json; see vellumd --help).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${VELLUM_JOBS:-2}"
listen="${VELLUM_LISTEN:-127.0.0.1:7410}"
data="${VELLUM_DATA:-vellum-data}"

bash scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs" --target vellumd vellum vellum-verify vellum-audit >/dev/null

echo "vellum: client: $PWD/build/bin/vellum --addr $listen ...   (see README, 'A session with the CLI')" >&2
exec ./build/bin/vellumd --listen "$listen" --data "$data" "$@"
