"""A non-square copy of a class-per-folder set, to measure --fit pad against --fit stretch.

Every image is cut to a window of a random aspect ratio (log-uniform in [1/2.5, 2.5], the
longer side the image's own, placed at random), so a set of square images (NEU, X-SDD) becomes
one of wide and tall images like a line's parts, with the same classes and textures. Seeded:
the same command writes the same files. Needs Pillow (the peers' venv has it).

    python benches/aspect_set.py --src ../shared/data/neu-cls --out /tmp/neu-aspect
"""

import argparse
import math
import os
import random
import sys

from PIL import Image


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="class-per-folder set to cut")
    ap.add_argument("--out", required=True, help="new folder (must not exist)")
    ap.add_argument("--max-aspect", type=float, default=2.5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if os.path.exists(a.out):
        sys.exit(f"--out {a.out}: exists; give a new folder")
    if a.max_aspect < 1:
        sys.exit(f"--max-aspect {a.max_aspect}: at least 1")
    rng = random.Random(a.seed)
    classes = sorted(d for d in os.listdir(a.src) if os.path.isdir(os.path.join(a.src, d)))
    if not classes:
        sys.exit(f"--src {a.src}: no class folders")
    n = 0
    for c in classes:
        os.makedirs(os.path.join(a.out, c))
        for f in sorted(os.listdir(os.path.join(a.src, c))):
            img = Image.open(os.path.join(a.src, c, f))
            w, h = img.size
            r = math.exp(rng.uniform(-math.log(a.max_aspect), math.log(a.max_aspect)))
            side = max(w, h)
            cw, ch = (side, round(side / r)) if r >= 1 else (round(side * r), side)
            cw, ch = max(1, min(cw, w)), max(1, min(ch, h))
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            img.crop((x, y, x + cw, y + ch)).save(
                os.path.join(a.out, c, os.path.splitext(f)[0] + ".png")
            )
            n += 1
    print(f"wrote {n} images in {len(classes)} classes to {a.out}")


if __name__ == "__main__":
    main()
