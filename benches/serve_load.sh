#!/usr/bin/env bash
# Load test of `glassnet serve` in one run on this machine: trains a model on the built-in
# set (or takes MODEL), starts the server, runs benches/serve_load.rs at 1, 8 and 64
# concurrent clients on loopback, then `glassnet bench` on the same device for the batch-64
# inference rate the server is measured against.
#
#   bash benches/serve_load.sh                 # CPU path
#   DEVICE=gpu bash benches/serve_load.sh      # the shaders (any adapter)
#
# Environment: MODEL (a model folder), DEVICE (cpu), REQUESTS (10000 per round), CLIENTS
# (1,8,64), PORT (18080).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
device=${DEVICE:-cpu}
port=${PORT:-18080}
(cd "$root" && cargo build --release -q && cargo bench --bench serve_load --no-run -q 2>/dev/null)
bin=$root/target/release/glassnet
client=$(ls -t "$root"/target/release/deps/serve_load-* | grep -v '\.d$' | head -1)
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
model=${MODEL:-}
if [ -z "$model" ]; then
  echo "training a model on the built-in set ..." >&2
  "$bin" train --out "$tmp/model" --cpu > "$tmp/train.log"
  model=$tmp/model
fi
"$bin" synth --out "$tmp/images" --counts 64,64,64,64 > /dev/null
"$bin" serve --model "$model" --addr "127.0.0.1:$port" --device "$device" > "$tmp/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q listening "$tmp/serve.log" && break; sleep 0.1; done
head -1 "$tmp/serve.log"
echo "glassnet commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$client" --addr "127.0.0.1:$port" --images "$tmp/images" --clients "${CLIENTS:-1,8,64}" \
  --requests "${REQUESTS:-10000}"
curl -s "http://127.0.0.1:$port/healthz" 2>/dev/null || true
echo
kill -TERM "$server"; wait "$server" || true; server=
tail -1 "$tmp/serve.log"
echo "glassnet bench --device $device (same network, same machine):"
"$bin" bench --device "$device" --no-kernels --reps 50 | grep -E 'inference|training'
