#!/usr/bin/env bash
# Installs what is missing, builds Release and runs Vellum on the embedded
# default data directory ./vellum-data.
#
# Until the gRPC server (vellumd) lands, this runs the local demo: it appends
# transactions to the ledger in ./vellum-data/demo, prints the signed
# checkpoint and checks the proofs it wrote with the standalone verifier.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${VELLUM_JOBS:-2}"
data="${VELLUM_DATA:-vellum-data}"

bash scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs" --target vellum-demo vellum-verify >/dev/null

./build/bin/vellum-demo --data "$data/demo"

echo
echo "== vellum-verify checkpoint --vkey $data/demo/vkey.txt $data/demo/checkpoint.txt"
./build/bin/vellum-verify checkpoint --vkey "$data/demo/vkey.txt" "$data/demo/checkpoint.txt"
echo "== vellum-verify log-proof $data/demo/block-proof.json"
./build/bin/vellum-verify log-proof "$data/demo/block-proof.json"
if [ -f "$data/demo/consistency-proof.json" ]; then
  echo "== vellum-verify log-proof $data/demo/consistency-proof.json"
  ./build/bin/vellum-verify log-proof "$data/demo/consistency-proof.json"
fi
