#!/usr/bin/env bash
# Load test of `glassnet serve` in one run on this machine: trains a model on the built-in
# set (or takes MODEL), starts the server, runs benches/serve_load.rs on loopback at 1 and 8
# concurrent clients, then ROUNDS (3) alternating rounds of `glassnet bench` (batch-64
# inference, the engine alone) and 64 concurrent clients, and prints each round's ratio and
# their median.
#
#   bash benches/serve_load.sh                 # CPU path
#   DEVICE=gpu bash benches/serve_load.sh      # the shaders (any adapter)
#
# Environment: MODEL (a model folder), DEVICE (cpu), REQUESTS (10000 per round), ROUNDS (3),
# PORT (18080).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
device=${DEVICE:-cpu}
port=${PORT:-18080}
requests=${REQUESTS:-10000}
rounds=${ROUNDS:-3}
(cd "$root" && cargo build --release -q && cargo bench --bench serve_load --no-run -q 2>/dev/null)
bin=$root/target/release/glassnet
client=$(ls -t "$root"/target/release/deps/serve_load-* | grep -v '\.d$' | head -1)
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
model=${MODEL:-}
if [ -z "$model" ]; then
  echo "training a model on the built-in set ..." >&2
  "$bin" train --out "$tmp/model" --cpu > "$tmp/train.log" 2>&1
  model=$tmp/model
fi
"$bin" synth --out "$tmp/images" --counts 64,64,64,64 > /dev/null
rm -f "$tmp/images/contact_sheet.png"
"$bin" serve --model "$model" --addr "127.0.0.1:$port" --device "$device" > "$tmp/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q listening "$tmp/serve.log" && break; sleep 0.1; done
head -1 "$tmp/serve.log"
echo "glassnet commit $(git -C "$root" rev-parse --short HEAD), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
load() { "$client" --addr "127.0.0.1:$port" --images "$tmp/images" --clients "$1" --requests "$requests"; }
load 1,8
ratios=()
for r in $(seq "$rounds"); do
  b=$("$bin" bench --device "$device" --no-kernels --reps 30 | sed -n 's/^inference: \([0-9.]*\) images\/s at batch 64.*/\1/p')
  row=$(load 64 | tail -1)
  s=$(echo "$row" | awk -F'|' '{gsub(/ /, "", $5); print $5}')
  ratio=$(awk -v s="$s" -v b="$b" 'BEGIN { printf "%.2f", s / b }')
  ratios+=("$ratio")
  echo "round $r: bench inference at batch 64 $b images/s; serve at 64 clients: $row -> ${ratio}x"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "serve at 64 clients / bench inference at batch 64: median ${median}x over $rounds rounds (${ratios[*]})"
curl -s "http://127.0.0.1:$port/healthz" 2>/dev/null || true
echo
kill -TERM "$server"; wait "$server" || true; server=
tail -1 "$tmp/serve.log"
