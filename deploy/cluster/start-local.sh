#!/usr/bin/env bash
# Try the reference deployment on one machine: N wasmlet nodes on one PostgreSQL
# database, behind HAProxy. Ctrl-C stops HAProxy and the nodes this script started.
#
#   WASMLET_DATABASE_URL=postgresql://wasmlet@127.0.0.1/wasmlet deploy/cluster/start-local.sh 3
#
# Nodes listen on 127.0.0.1:8787, 8788, ... (WASMLET_FIRST_PORT), each with its own
# data directory under ./.wasmlet-cluster (WASMLET_CLUSTER_DIR); HAProxy on
# 127.0.0.1:8080 (LISTEN) with its status page on 127.0.0.1:8404/stats. The keys are
# generated once into the cluster directory and shared by every node.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
nodes="${1:-3}"
: "${WASMLET_DATABASE_URL:?set WASMLET_DATABASE_URL to the shared PostgreSQL database}"
dir="${WASMLET_CLUSTER_DIR:-./.wasmlet-cluster}"
first_port="${WASMLET_FIRST_PORT:-8787}"
listen="${LISTEN:-127.0.0.1:8080}"
mkdir -p "$dir"
if [ -z "${WASMLET_SERVICE_KEY:-}" ] || [ -z "${WASMLET_ANON_KEY:-}" ]; then
  if [ ! -f "$dir/keys.env" ]; then
    umask 077
    printf 'WASMLET_SERVICE_KEY=%s\nWASMLET_ANON_KEY=%s\n' \
      "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" \
      "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" > "$dir/keys.env"
  fi
  set -a; . "$dir/keys.env"; set +a
fi
# Secrets are sealed with one key: every node must have the same one.
if [ -z "${WASMLET_SECRETS_KEY:-}" ]; then
  if [ ! -f "$dir/secrets.env" ]; then
    umask 077
    printf 'WASMLET_SECRETS_KEY=%s\n' \
      "$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')" \
      > "$dir/secrets.env"
  fi
  set -a; . "$dir/secrets.env"; set +a
fi

pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait; }
trap stop EXIT INT TERM

addresses=()
for i in $(seq 0 $((nodes - 1))); do
  port=$((first_port + i))
  WASMLET_DATA_DIR="$dir/node$i" WASMLET_PORT="$port" \
    wasmlet serve > "$dir/node$i.log" 2>&1 &
  pids+=("$!")
  # One after another: the first applies the schema migrations.
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$port/health" > /dev/null && break
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "node$i exited: see $dir/node$i.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "node$i healthy on 127.0.0.1:$port"
  addresses+=("127.0.0.1:$port")
done

python3 "$here/render_haproxy.py" --listen "$listen" "${addresses[@]}" > "$dir/haproxy.cfg"
haproxy -c -q -f "$dir/haproxy.cfg"
echo "HAProxy on $listen (status: http://127.0.0.1:8404/stats); service key in $dir/keys.env"
haproxy -db -f "$dir/haproxy.cfg" &
pids+=("$!")
wait "${pids[-1]}"
