#!/usr/bin/env bash
# Checks the module dependency table of DESIGN.md ("Modules and dependency
# direction") against the includes in the tree, and that vellum-verify links
# neither LMDB nor gRPC. Usage: deps_check.sh SOURCE_DIR [BUILD_DIR]
set -euo pipefail
src="${1:?source dir}"
build="${2:-}"
cd "$src"
fail=0

# module: the vellum/<module>/ headers its non-test code may include.
declare -A allowed=(
  [base]="base"
  [merkle]="base merkle"
  [journal]="base merkle journal"
  [indexes]="base merkle indexes"
  [engines]="base merkle indexes engines"
  [verifier]="base merkle journal engines verifier"
  [api]="base merkle journal indexes engines verifier api"
  # vellum-audit reads the stores and runs api's projection (DESIGN.md).
  [verifier/audit]="base merkle journal indexes engines verifier api audit"
)
# Folders that are modules of their own inside another module's folder.
nested='^verifier/audit/'

for module in "${!allowed[@]}"; do
  [ -d "$module" ] || continue
  while IFS= read -r line; do
    file="${line%%:*}"
    dep=$(sed -E 's/.*#include "vellum\/([a-z_]+)\/.*/\1/' <<<"$line")
    if [[ " ${allowed[$module]} " != *" $dep "* ]]; then
      echo "deps_check: $file includes vellum/$dep/ but $module may only use: ${allowed[$module]}"
      fail=1
    fi
  done < <(grep -rEn '#include "vellum/[a-z_]+/' "$module" --include='*.h' --include='*.cc' | grep -v '_test\.cc:' |
           { if [[ "$module" == */* ]]; then cat; else grep -Ev "$nested"; fi; } || true)
done

# The verifier may use only the journal's pure formats, never its store.
if grep -rEn '#include "vellum/journal/(store|ledger)\.h"' verifier --include='*.h' --include='*.cc' | grep -v '/audit/'; then
  echo "deps_check: verifier includes the journal store (only format.h and proofs.h are pure)"
  fail=1
fi

# Third-party types stay in the module that owns them.
if grep -rEln '#include <lmdb\.h>' --include='*.h' --include='*.cc' --exclude-dir='build*' . | grep -vE '^\./(journal|indexes)/src/'; then
  echo "deps_check: LMDB is included outside journal/src and indexes/src"
  fail=1
fi
# gRPC clients outside api/: the end-to-end tests and the load generator.
if grep -rEln '#include <grpc' --include='*.h' --include='*.cc' --exclude-dir='build*' . | grep -vE '^\./(api|tests|bench)/'; then
  echo "deps_check: gRPC is included outside api/ (and its clients in tests/, bench/)"
  fail=1
fi

if [ -n "$build" ] && [ -x "$build/bin/vellum-verify" ]; then
  if ldd "$build/bin/vellum-verify" | grep -Ei 'lmdb|grpc'; then
    echo "deps_check: vellum-verify links LMDB or gRPC"
    fail=1
  fi
fi

[ "$fail" -eq 0 ] && echo "deps_check: module dependencies follow DESIGN.md"
exit "$fail"
