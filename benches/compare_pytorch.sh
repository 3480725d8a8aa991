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
# Environment: POOLING (avg-max, train's default, or flatten, the paper's) and NORM (batch,
# train's default, or none, the paper's): both sides run that network,
# ROUNDS (3 alternating rounds; medians and the spread are printed),
# TORCH_DEVICE (cpu), THREADS (all cores), PEERS (../shared/peers), PY (a python
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
rounds=${ROUNDS:-3}
pooling=${POOLING:-avg-max}
norm=${NORM:-batch}
# Alternating rounds, so a slow spell of a shared machine lands on both sides.
for r in $(seq "$rounds"); do
  echo "round $r/$rounds: PyTorch on ${TORCH_DEVICE:-cpu} ($threads threads) ..." >&2
  "$py" "$root/benches/pytorch_bench.py" --peers "$peers" --device "${TORCH_DEVICE:-cpu}" \
    --threads "$threads" --pooling "$pooling" --norm "$norm" > "$tmp/torch-$r.json"
  echo "round $r/$rounds: glassnet bench ${args[*]} ..." >&2
  "$GLASSNET" bench "${args[@]}" --pooling "$pooling" --norm "$norm" --no-kernels --reps 50 --json > "$tmp/glassnet-$r.json"
done
"$py" - "$tmp" "$rounds" <<'PY'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
ts = [json.load(open(f"{tmp}/torch-{r}.json")) for r in range(1, rounds + 1)]
gs = [json.load(open(f"{tmp}/glassnet-{r}.json")) for r in range(1, rounds + 1)]
t0, g0 = ts[0], gs[0]
print(f"glassnet: {g0['device']} (commit {g0['commit']}); network {g0.get('network', 'reference')}")
print(f"PyTorch {t0['torch']} on {t0.get('device_name', t0['device'])}, {t0['threads']} threads, pooling {t0.get('pooling', 'flatten')}, norm {t0.get('norm', 'none')}"
      + (" (the faster of cudnn.benchmark off and on)" if "default" in t0 else ""))
print(f"{rounds} alternating rounds; each figure is the median over the rounds, the ratio's spread is min-max")
rows = [
    ("training images/s (96 per step)", "train_images_per_s", "train_images_per_s", True),
    ("inference images/s at batch 64", "infer_images_per_s", "infer_b64_images_per_s", True),
    ("latency at batch 1, ms", "latency_ms", "latency_b1_ms", False),
]
med = statistics.median
print(f"{'':34} {'glassnet':>10} {'PyTorch':>10} {'ratio':>7}  per round")
for name, gk, tk, higher in rows:
    gv = [g[gk] for g in gs]
    tv = [t["best"][tk] for t in ts]
    ratios = [(a / b if higher else b / a) for a, b in zip(gv, tv)]
    per = " ".join(f"{x:.2f}" for x in ratios)
    print(f"{name:34} {med(gv):10.2f} {med(tv):10.2f} {med(ratios):6.2f}x  {per} "
          f"(spread {min(ratios):.2f}-{max(ratios):.2f})")
if all("fp32_strict" in t for t in ts):
    f = {k: med([t["fp32_strict"][k] for t in ts])
         for k in ("train_images_per_s", "infer_b64_images_per_s", "latency_b1_ms")}
    g = {k: med([x[k] for x in gs]) for k in ("train_images_per_s", "infer_images_per_s", "latency_ms")}
    print(f"{'PyTorch in strict fp32 (no TF32):':34} training {f['train_images_per_s']:.0f} images/s "
          f"({g['train_images_per_s'] / f['train_images_per_s']:.2f}x), inference "
          f"{f['infer_b64_images_per_s']:.0f} images/s ({g['infer_images_per_s'] / f['infer_b64_images_per_s']:.2f}x), "
          f"{f['latency_b1_ms']:.2f} ms ({f['latency_b1_ms'] / g['latency_ms']:.2f}x)")
if all("train_sync_images_per_s" in g for g in gs):
    gs_ = med([g["train_sync_images_per_s"] for g in gs])
    tb = med([t["best"]["train_images_per_s"] for t in ts])
    print(f"{'glassnet one step at a time:':34} training {gs_:.0f} images/s "
          f"({gs_ / tb:.2f}x; the row above submits each step before "
          "reading the last one's loss, as `glassnet train` does)")
print("ratio > 1: glassnet is faster (for latency: PyTorch ms / glassnet ms)")
PY
