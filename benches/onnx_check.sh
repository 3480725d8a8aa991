#!/usr/bin/env bash
# The exported ONNX file run by onnxruntime (PyPI) beside glassnet's own CPU path, on the
# built-in set's images: max abs difference of embeddings and whether the nearest class
# agrees for every image. tests/export.rs does the same with tract on every architecture;
# this repeats it with the runtime most consumers use. The images are 160 px, so the input
# is resized; the README's few lines of Python (Pillow's bilinear resize in place of
# glassnet's) are run too, and how far their input and answers are from glassnet's is printed.
#
#   bash benches/onnx_check.sh            # trains a small model on the built-in set
#   MODEL=runs/my-model bash benches/onnx_check.sh
#
# Environment: MODEL, PY (a python; default: a venv in ~/.cache/glassnet-onnx-venv with
# onnxruntime, numpy and pillow).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
venv=${ONNX_VENV:-$HOME/.cache/glassnet-onnx-venv}
if [ -z "${PY:-}" ]; then
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q onnxruntime numpy pillow
  fi
  PY=$venv/bin/python
fi
(cd "$root" && cargo build --release -q)
bin=$root/target/release/glassnet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model=${MODEL:-}
if [ -z "$model" ]; then
  "$bin" train --out "$tmp/model" --cpu --epochs 2 > /dev/null
  model=$tmp/model
fi
"$bin" synth --out "$tmp/images" --counts 16,16,16,16 --size 160 > /dev/null
"$bin" export --model "$model" --onnx "$tmp/model.onnx"
"$bin" embed --model "$model" --data "$tmp/images" --cpu --out "$tmp/emb.npy" --inputs "$tmp/inputs.npy" > /dev/null
"$bin" predict --model "$model" --cpu --json "$tmp"/images/*/ > "$tmp/predict.jsonl"
"$PY" - "$tmp" <<'PY'
import json, sys
import numpy as np, onnxruntime as ort
d = sys.argv[1]
sess = ort.InferenceSession(f"{d}/model.onnx", providers=["CPUExecutionProvider"])
side = json.load(open(f"{d}/model.json"))
x = np.load(f"{d}/inputs.npy")
emb, dist = sess.run(["embedding", "distances"], {"input": x})
ours = np.load(f"{d}/emb.npy")
classes = [side["classes"][side["gallery_labels"][j]] for j in dist.argmin(1)]
want = [json.loads(l)["class"] for l in open(f"{d}/predict.jsonl")]
print(f"onnxruntime {ort.__version__}: {len(x)} images, max |ort - glassnet| embedding "
      f"{np.abs(emb - ours).max():.2e}; nearest class agrees on "
      f"{sum(a == b for a, b in zip(classes, want))}/{len(want)}")
assert np.abs(emb - ours).max() <= 1e-5 and classes == want
# The README's preprocessing with Pillow, on the same files in the same order.
import glob
from PIL import Image
s = side["arch"]["side"]
files = sorted(glob.glob(f"{d}/images/*/*.png"))
px = np.stack([(np.asarray(Image.open(f).convert("L").resize((s, s), Image.BILINEAR),
                           np.float32) / 255.0 * 2 - 1)[None] for f in files])
_, pdist = sess.run(["embedding", "distances"], {"input": px})
pclasses = [side["classes"][side["gallery_labels"][j]] for j in pdist.argmin(1)]
print(f"Pillow preprocessing: input within {np.abs(px - x).max():.3f} (mean "
      f"{np.abs(px - x).mean():.4f}) of glassnet's; class agrees on "
      f"{sum(a == b for a, b in zip(pclasses, want))}/{len(want)}")
PY
