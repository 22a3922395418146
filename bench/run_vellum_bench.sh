#!/usr/bin/env bash
# End-to-end benchmark (docs/BENCHMARKS.md, section 7): vellumd over gRPC on
# loopback against a PostgreSQL peer keeping a trigger-maintained SHA-256 hash
# chain, both started here in a fresh temporary directory and stopped at exit.
#
#   bash bench/run_vellum_bench.sh [vellum-bench flags...]
#
# e.g. `bash bench/run_vellum_bench.sh --seconds 5 --clients 1,16`. Without
# flags: 1, 16, 64 and 256 clients, puts then proven gets, 2 s warm-up + 8 s
# per point, about 3 minutes in all.
#
# Environment:
#   VELLUM_BENCH_BUILD    build directory (default: <repo>/build-bench)
#   VELLUM_BENCH_DIR      parent of the temporary directory; must be a real
#                         disk, not tmpfs (default: /tmp)
#   VELLUM_BENCH_SYSTEMS  "vellum pg" (default), "vellum" or "pg"
#   VELLUM_BENCH_JSON     where vellum-bench writes its JSON (default:
#                         <build>/vellum-bench.json)
#   VELLUM_BENCH_KEEP=1   keep the temporary directory (data and server logs)
#   VELLUM_BENCH_NO_BUILD=1  use the binaries already built
#
# Installs what it needs (scripts/deps.sh, then postgresql and libpq-dev) when
# missing; needs root or sudo only then. PostgreSQL refuses to run as root:
# as root, the cluster belongs to the `postgres` user (created by Debian's
# package) and its server runs under runuser.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VELLUM_BENCH_BUILD:-$root/build-bench}
parent=${VELLUM_BENCH_DIR:-/tmp}
systems=${VELLUM_BENCH_SYSTEMS:-vellum pg}
json=${VELLUM_BENCH_JSON:-$build/vellum-bench.json}

log() { echo "run_vellum_bench: $*" >&2; }

# ---- Packages ---------------------------------------------------------------
bash "$root/scripts/deps.sh"
missing=()
for p in postgresql postgresql-contrib libpq-dev; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
[ -x "$pgbin/initdb" ] || { log "no initdb under /usr/lib/postgresql/*/bin"; exit 1; }

# ---- Build ------------------------------------------------------------------
if [ "${VELLUM_BENCH_NO_BUILD:-0}" != 1 ]; then
  if [ ! -f "$build/build.ninja" ]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVELLUM_BUILD_TESTS=OFF >/dev/null
  fi
  cmake --build "$build" -j"$(nproc)" --target vellum-bench vellumd
fi

# ---- Temporary directory, clean-up ------------------------------------------
work=$(mktemp -d "$parent/vellum-bench.XXXXXX")
chmod 755 "$work"
vellumd_pid=
pg_started=0
as_pg=()
cleanup() {
  set +e
  if [ -n "$vellumd_pid" ]; then
    kill "$vellumd_pid" 2>/dev/null
    wait "$vellumd_pid" 2>/dev/null
  fi
  if [ "$pg_started" = 1 ]; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null
  fi
  if [ "${VELLUM_BENCH_KEEP:-0}" = 1 ]; then
    log "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# A loopback port nothing listens on.
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  log "no free port found"
  return 1
}

wait_port() {  # port seconds
  for _ in $(seq 1 $(($2 * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ---- Machine ----------------------------------------------------------------
echo "== machine =="
echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "kernel: $(uname -r), memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
echo "data directory: $work on $(df -T "$work" | awk 'NR==2 {print $1 " (" $2 ")"}')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

bench_args=()

# ---- PostgreSQL -------------------------------------------------------------
if [[ " $systems " == *" pg "* ]]; then
  mkdir "$work/pg"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || { log "no postgres user (Debian's postgresql package creates it)"; exit 1; }
    chown postgres:postgres "$work/pg"
    as_pg=(runuser -u postgres --)
  fi
  pg_port=$(free_port)
  "${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" -U bench -A trust -E UTF8 --locale=C >"$work/pg/initdb.log"
  # Durability as Vellum's (a commit returns once its WAL is flushed to the
  # disk); room for 256 clients; checkpoints far enough apart that none is
  # forced by WAL volume during the run.
  cat >>"$work/pg/data/postgresql.conf" <<EOF

# run_vellum_bench.sh
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$work/pg'
max_connections = 300
fsync = on
synchronous_commit = on
full_page_writes = on
wal_sync_method = fdatasync
shared_buffers = 512MB
max_wal_size = 8GB
checkpoint_timeout = 30min
EOF
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w start >/dev/null
  pg_started=1
  echo "PostgreSQL: $("$pgbin/postgres" --version), port $pg_port, data $work/pg/data"
  echo "fsync probe (pg_test_fsync, fdatasync of 8 KiB WAL writes, same disk):"
  "${as_pg[@]}" "$pgbin/pg_test_fsync" -s 1 -f "$work/pg/fsync_probe" 2>/dev/null |
    grep -E '^ +(fdatasync|open_datasync) ' | head -n 2 || true
  bench_args+=(--pg "host=127.0.0.1 port=$pg_port dbname=postgres user=bench sslmode=disable")
fi

# ---- vellumd ----------------------------------------------------------------
if [[ " $systems " == *" vellum "* ]]; then
  vellum_port=$(free_port)
  mkdir "$work/vellum"
  "$build/bin/vellumd" --listen "127.0.0.1:$vellum_port" --data "$work/vellum" >"$work/vellumd.log" 2>&1 &
  vellumd_pid=$!
  if ! wait_port "$vellum_port" 30; then
    log "vellumd did not listen on 127.0.0.1:$vellum_port; its log:"
    cat "$work/vellumd.log" >&2
    exit 1
  fi
  echo "vellumd: port $vellum_port, data $work/vellum"
  bench_args+=(--vellum "127.0.0.1:$vellum_port")
fi

# ---- Run --------------------------------------------------------------------
echo
echo "== vellum-bench ${bench_args[*]} --json $json $* =="
status=0
"$build/bin/vellum-bench" "${bench_args[@]}" --json "$json" "$@" || status=$?
echo
echo "data after the run: $(du -sh "$work"/* 2>/dev/null | awk '{printf "%s %s; ", $2, $1}')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
