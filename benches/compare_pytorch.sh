#!/usr/bin/env bash
# Side by side on this machine, in one run: the PyTorch reference network
# (benches/pytorch_bench.py over ../shared/peers/pytorch_triplet.py) and `glassnet bench` on the
# chosen device, then the ratios glassnet / PyTorch. Run from anywhere; extra arguments go to
# `glassnet bench` (default: --cpu).
#
#   bash benches/compare_pytorch.sh                          # glassnet's CPU path vs PyTorch CPU
#   bash benches/compare_pytorch.sh --gpu                    # glassnet's shaders vs PyTorch CPU
#   TORCH_DEVICE=cuda bash benches/compare_pytorch.sh --gpu  # glassnet's shaders vs PyTorch CUDA
#
# Environment: TORCH_DEVICE (cpu), THREADS (all cores), PEERS (../shared/peers), PY (a python
# with torch; default: the environment ../shared/peers/setup.sh makes outside the project),
# GLASSNET (a built binary; default: build target/release/glassnet).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$root/../shared/peers}
[ -f "$peers/pytorch_triplet.py" ] || { echo "no PyTorch reference at $peers (set PEERS)" >&2; exit 1; }
py=${PY:-$(bash "$peers/setup.sh")}
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--cpu)
threads=${THREADS:-$(nproc)}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
if [ -z "${GLASSNET:-}" ]; then
  (cd "$root" && cargo build --release -q)
  GLASSNET=$root/target/release/glassnet
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "PyTorch on ${TORCH_DEVICE:-cpu} ($threads threads) ..." >&2
"$py" "$root/benches/pytorch_bench.py" --peers "$peers" --device "${TORCH_DEVICE:-cpu}" \
  --threads "$threads" > "$tmp/torch.json"
echo "glassnet bench ${args[*]} ..." >&2
"$GLASSNET" bench "${args[@]}" --no-kernels --reps 50 --json > "$tmp/glassnet.json"
"$py" - "$tmp/torch.json" "$tmp/glassnet.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
g = json.load(open(sys.argv[2]))
b = t["best"]
print(f"glassnet: {g['device']} (commit {g['commit']})")
print(f"PyTorch {t['torch']} on {t.get('device_name', t['device'])}, {t['threads']} threads"
      + (" (the faster of cudnn.benchmark off and on)" if "default" in t else ""))
rows = [
    ("training images/s (96 per step)", g["train_images_per_s"], b["train_images_per_s"], True),
    ("inference images/s at batch 64", g["infer_images_per_s"], b["infer_b64_images_per_s"], True),
    ("latency at batch 1, ms", g["latency_ms"], b["latency_b1_ms"], False),
]
print(f"{'':34} {'glassnet':>10} {'PyTorch':>10} {'ratio':>7}")
for name, gv, tv, higher in rows:
    ratio = gv / tv if higher else tv / gv
    print(f"{name:34} {gv:10.2f} {tv:10.2f} {ratio:6.2f}x")
if "fp32_strict" in t:
    f = t["fp32_strict"]
    print(f"{'PyTorch in strict fp32 (no TF32):':34} training {f['train_images_per_s']:.0f} images/s "
          f"({g['train_images_per_s'] / f['train_images_per_s']:.2f}x), inference "
          f"{f['infer_b64_images_per_s']:.0f} images/s ({g['infer_images_per_s'] / f['infer_b64_images_per_s']:.2f}x), "
          f"{f['latency_b1_ms']:.2f} ms ({f['latency_b1_ms'] / g['latency_ms']:.2f}x)")
if "train_sync_images_per_s" in g:
    gs = g["train_sync_images_per_s"]
    print(f"{'glassnet one step at a time:':34} training {gs:.0f} images/s "
          f"({gs / b['train_images_per_s']:.2f}x; the row above submits each step before "
          "reading the last one's loss, as `glassnet train` does)")
print("ratio > 1: glassnet is faster (for latency: PyTorch ms / glassnet ms)")
PY
