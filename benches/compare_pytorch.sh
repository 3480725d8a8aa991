#!/usr/bin/env bash
# Side by side on this machine, in one run: the PyTorch reference network
# (../shared/peers/pytorch_triplet.py --bench-only, CPU) and `glassnet bench` on the chosen
# device, then the ratios glassnet / PyTorch. Run from anywhere; extra arguments go to
# `glassnet bench` (default: --cpu).
#
#   bash benches/compare_pytorch.sh            # glassnet's CPU path vs PyTorch CPU
#   bash benches/compare_pytorch.sh --gpu      # glassnet's shaders vs PyTorch CPU
#
# The PyTorch environment is made outside the project by ../shared/peers/setup.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$root/../shared/peers}
[ -f "$peers/pytorch_triplet.py" ] || { echo "no PyTorch reference at $peers (set PEERS)" >&2; exit 1; }
py=$(bash "$peers/setup.sh")
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--cpu)
threads=${THREADS:-$(nproc)}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
(cd "$root" && cargo build --release -q)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "PyTorch ($threads threads) ..." >&2
"$py" "$peers/pytorch_triplet.py" --bench-only --threads "$threads" > "$tmp/torch.json"
echo "glassnet bench ${args[*]} ..." >&2
"$root/target/release/glassnet" bench "${args[@]}" --no-kernels --reps 20 --json > "$tmp/glassnet.json"
python3 - "$tmp/torch.json" "$tmp/glassnet.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
g = json.load(open(sys.argv[2]))
print(f"glassnet: {g['device']} (commit {g['commit']})")
print(f"PyTorch {t['torch']}, {t['threads']} threads, load after {t['load_avg_1m_after']:.2f}")
rows = [
    ("training images/s (96 per step)", g["train_images_per_s"], t["train_images_per_s"], True),
    ("inference images/s at batch 64", g["infer_images_per_s"], t["infer_b64_images_per_s"], True),
    ("latency at batch 1, ms", g["latency_ms"], t["latency_b1_ms_median"], False),
]
print(f"{'':34} {'glassnet':>10} {'PyTorch':>10} {'ratio':>7}")
for name, gv, tv, higher in rows:
    ratio = gv / tv if higher else tv / gv
    print(f"{name:34} {gv:10.2f} {tv:10.2f} {ratio:6.2f}x")
print("ratio > 1: glassnet is faster (for latency: PyTorch ms / glassnet ms)")
PY
