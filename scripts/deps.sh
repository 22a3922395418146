#!/usr/bin/env bash
# Installs the Debian packages Vellum builds and tests with. Idempotent and
# quiet when nothing is missing; needs root (or sudo) only when it installs.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libssl-dev liblmdb-dev nlohmann-json3-dev libcli11-dev
  catch2 libbenchmark-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libspdlog-dev
  libpq-dev  # vellum-bench talks to its PostgreSQL peer
  libjemalloc-dev  # vellumd, vellum-audit and the benchmarks allocate with it
  openssl
  # vellum-audit's HTML report is rendered in headless Chromium by a test.
  chromium fonts-dejavu-core
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "vellum: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "vellum: missing packages (${missing[*]}) and not root; install them or run as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
