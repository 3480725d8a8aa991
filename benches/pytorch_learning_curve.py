#!/usr/bin/env python3
"""PyTorch's points beside a glassnet learning curve, on exactly the same images.

    glassnet evaluate --data D --folds 10 --methods triplet --train-per-class 1,5,10,30,100 --out C
    python3 benches/pytorch_learning_curve.py --peers ../shared/peers C [--threads 2] [--folds 1,2]

For every point C/per-class-N (or C itself when it is one evaluate run), the script reads
split.json (each fold's training and test images, as glassnet ran them), trains glassnet's
default network in PyTorch on the fold's training images and scores the test fold by 1-NN,
5-NN and nearest centroid in the embedding space. Each finished fold is written to
C/pytorch/per-class-N/fold-XX.json, so an interrupted run continues where it stopped; the
curve is written to C/pytorch/learning-curve.json and printed as a table beside glassnet's.

The same network and recipe as `glassnet evaluate` (README, "Training that does not
collapse"): conv blocks 5x5x16, 3x3x32, 3x3x64, 3x3x128, each with a BatchNorm2d (eps 1e-5,
momentum 0.1), ReLU and 2x2 max-pooling; each channel's global mean and maximum into a dense
256 -> 64 (benches/pytorch_bench.py's make_net), L2-normalised; every valid triplet of a
class-balanced batch of 96 (p classes x k images, each class drawn from its own reshuffled
cycle), squared Euclidean distances, margin 0.2, the loss averaged over the active triplets;
Adam 1e-3 with a 5% linear warm-up and cosine decay to 5%; one pass over the training images
per epoch, at least 16 steps; 30 epochs, the last one kept (no model selection); a random
flip/90-degree turn (8 orientations) for every image drawn. What differs: PyTorch's
initialisation and random numbers, and images read here with PIL (grey, or red, green and
blue when the glassnet run read colour, bilinear resize to 112 px, scaled to [-1, 1]) rather
than by glassnet's decoder and resize. A run whose config.json records another network or a
preprocessing step this script does not replay (crop, denoise, contrast, segment, --fit pad)
is refused by name rather than compared with a different pipeline. Prints one JSON object.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pytorch_bench  # noqa: E402  (make_net, load_peer)

BATCH = 96
MARGIN = 0.2
LR = 1e-3
MIN_STEPS = 16
WARMUP_FRAC = 0.05
FINAL_LR_FRAC = 0.05


def points(curve):
    """(N or None, directory) of every run under `curve` that has a split.json."""
    if os.path.isfile(os.path.join(curve, "split.json")):
        return [(None, curve)]
    out = []
    for d in os.listdir(curve):
        if d.startswith("per-class-") and os.path.isfile(os.path.join(curve, d, "split.json")):
            out.append((int(d[len("per-class-"):]), os.path.join(curve, d)))
    if not out:
        sys.exit(f"{curve}: no split.json and no per-class-N/split.json (run glassnet evaluate first)")
    return sorted(out)


# The network this script builds, as glassnet's config.json `arch` names it.
DEFAULT_ARCH = {"side": 112, "channels": [16, 32, 64, 128], "kernels": [5, 3, 3, 3], "embed_dim": 64,
                "head": "l2", "pooling": "avg-max", "norm": "batch", "objective": "triplet"}


def run_colour(point_dir):
    """The glassnet run's colour ("grey" or "rgb") from its config.json, after checking that
    its network and preprocessing are the ones this script replays."""
    path = os.path.join(point_dir, "config.json")
    if not os.path.isfile(path):
        return "grey"  # runs written before config.json recorded them: the defaults
    with open(path) as fh:
        cfg = json.load(fh)
    arch, pre = cfg.get("arch", {}), cfg.get("preprocess", {})
    for k, v in DEFAULT_ARCH.items():
        if k in arch and arch[k] != v:
            sys.exit(f"{path}: arch.{k} is {arch[k]!r}; this script trains {v!r} only")
    for k, off in (("crop", None), ("denoise", "none"), ("contrast", "none"), ("segment", False),
                   ("fit", "stretch")):
        if pre.get(k, off) != off:
            sys.exit(f"{path}: preprocess.{k} is {pre[k]!r}; this script replays none of it")
    return pre.get("colour", "grey")


def load_images(files, size, cache, colour="grey"):
    """Images [n, C, size, size] in [-1, 1]: C = 1 (grey) or 3 (colour = "rgb")."""
    from PIL import Image

    mode = "RGB" if colour == "rgb" else "L"
    xs = []
    for f in files:
        if f not in cache:
            try:
                with Image.open(f) as im:
                    a = np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR), dtype=np.float32)
            except OSError as e:
                sys.exit(f"{f}: {e}")
            cache[f] = (a.transpose(2, 0, 1) if a.ndim == 3 else a[None]) / 127.5 - 1.0
        xs.append(cache[f])
    return torch.from_numpy(np.stack(xs))


def orient(x, t):
    """Orientation t (0..8: bit 0 flips x, bit 1 flips y, bit 2 transposes) of x [C, H, W]."""
    if t & 4:
        x = x.transpose(1, 2)
    if t & 1:
        x = x.flip(2)
    if t & 2:
        x = x.flip(1)
    return x


class Balanced:
    """p classes x k images per batch, as glassnet's BalancedBatches picks them."""

    def __init__(self, labels, rng):
        self.rng = rng
        self.by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        populated = len(self.by_class)
        self.k = max(BATCH // populated, 2, min(4, BATCH // 2))
        self.p = max(min(BATCH // self.k, populated), 2)
        self.cycle = [np.empty(0, dtype=np.int64) for _ in self.by_class]

    def draw(self, c):
        if len(self.cycle[c]) == 0:
            self.cycle[c] = self.rng.permutation(self.by_class[c])
        i, self.cycle[c] = self.cycle[c][0], self.cycle[c][1:]
        return i

    def batch(self):
        classes = self.rng.choice(len(self.by_class), size=self.p, replace=False)
        return np.array([self.draw(c) for c in classes for _ in range(self.k)])


def batch_all_loss(emb, labels):
    """Mean over the active triplets of every valid (a, p, n) in the batch; 0 when none is."""
    d = torch.cdist(emb, emb).pow(2)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    valid = (same & ~eye)[:, :, None] & (~same)[:, None, :]
    loss = F.relu(d[:, :, None] - d[:, None, :] + MARGIN) * valid
    active = (loss > 0).sum()
    return loss.sum() / active.clamp(min=1)


def lr_at(step, total):
    warm = max(total // 20, 1)
    if step <= warm:
        return LR * step / warm
    progress = min((step - warm) / max(total - warm, 1), 1.0)
    return LR * (FINAL_LR_FRAC + (1 - FINAL_LR_FRAC) * 0.5 * (1 + math.cos(math.pi * progress)))


def train(net_cls, x, y, epochs, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = net_cls()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    sampler = Balanced(y, rng)
    steps = max(math.ceil(len(y) / (sampler.p * sampler.k)), MIN_STEPS)
    total, step = epochs * steps, 0
    yt = torch.from_numpy(y)
    net.train()
    for _ in range(epochs):
        for _ in range(steps):
            step += 1
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total)
            idx = sampler.batch()
            xb = torch.stack([orient(x[i], int(t)) for i, t in zip(idx, rng.integers(0, 8, len(idx)))])
            emb = net(xb)
            loss = batch_all_loss(emb, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net


@torch.no_grad()
def embed(net, x):
    net.eval()
    return torch.cat([net(x[i:i + 256]) for i in range(0, len(x), 256)]).numpy()


def scores(y, p, classes):
    from sklearn.metrics import balanced_accuracy_score, f1_score

    return {
        "accuracy": float((y == p).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y, p)),
        "macro_f1": float(f1_score(y, p, average="macro", labels=list(range(classes)), zero_division=0)),
    }


def run_fold(ref, net_cls, split, f, epochs, seed, cache, colour):
    files, labels = split["files"], np.asarray(split["labels"], dtype=np.int64)
    fold = split["folds"][f]
    tr, te = np.asarray(fold["train"]), np.asarray(fold["test"])
    x = load_images([files[i] for i in np.concatenate([tr, te])], 112, cache, colour)
    xtr, xte = x[: len(tr)], x[len(tr):]
    t0 = time.perf_counter()
    net = train(net_cls, xtr, labels[tr], epochs, seed + f)
    train_s = time.perf_counter() - t0
    g, q = embed(net, xtr), embed(net, xte)
    d = ref.sqdist(q, g)
    ytr, yte, k = labels[tr], labels[te], len(split["classes"])
    cent = np.stack([g[ytr == c].mean(0) if (ytr == c).any() else np.full(g.shape[1], np.inf) for c in range(k)])
    rows = {
        "pytorch 1-NN": ref.knn_predict(d, ytr, 1),
        "pytorch 5-NN": ref.knn_predict(d, ytr, 5),
        "pytorch centroid": np.argmin(ref.sqdist(q, cent), axis=1),
    }
    return {
        "fold": f,
        "train_counts": np.bincount(ytr, minlength=k).tolist(),
        "train_seconds": train_s,
        "rows": {r: scores(yte, p, k) for r, p in rows.items()},
    }


def glassnet_row(point_dir, row="triplet 1-NN"):
    try:
        with open(os.path.join(point_dir, "report.json")) as fh:
            s = next(r for r in json.load(fh)["summary"] if r["row"] == row)
        return {"accuracy": s["accuracy"], "balanced_accuracy": s["balanced_accuracy"], "macro_f1": s["macro_f1"]}
    except (OSError, StopIteration, KeyError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("curve", help="glassnet evaluate --out directory (a learning curve or one run)")
    ap.add_argument("--peers", default=os.path.join(HERE, "..", "..", "shared", "peers"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", default="", help="1-based folds to run (default: all)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ref = pytorch_bench.load_peer(a.peers)
    cache, curve = {}, []
    for n, d in points(a.curve):
        colour = run_colour(d)
        net_cls = pytorch_bench.make_net(ref, "avg-max", "batch", head="l2",
                                         in_channels=3 if colour == "rgb" else 1)
        with open(os.path.join(d, "split.json")) as fh:
            split = json.load(fh)
        if split.get("files") is None:
            sys.exit(f"{d}/split.json: no files (the generated built-in set cannot be read from here)")
        out = os.path.join(a.curve, "pytorch", os.path.basename(d) if n is not None else "")
        os.makedirs(out, exist_ok=True)
        want = [int(f) - 1 for f in a.folds.split(",") if f] or range(len(split["folds"]))
        folds = []
        for f in range(len(split["folds"])):
            path = os.path.join(out, f"fold-{f + 1:02}.json")
            if not os.path.exists(path) and f in want:
                r = run_fold(ref, net_cls, split, f, a.epochs, a.seed, cache, colour)
                with open(path + ".tmp", "w") as fh:
                    json.dump(r, fh)
                os.replace(path + ".tmp", path)
                print(f"N={n} fold {f + 1}: " + ", ".join(f"{k} {v['accuracy']:.4f}" for k, v in r["rows"].items()),
                      file=sys.stderr)
            if os.path.exists(path):
                with open(path) as fh:
                    folds.append(json.load(fh))
        if not folds:
            continue
        point = {"per_class": n, "folds": len(folds), "of": len(split["folds"]), "glassnet": glassnet_row(d)}
        for row in folds[0]["rows"]:
            for s in ("accuracy", "balanced_accuracy", "macro_f1"):
                v = [f["rows"][row][s] for f in folds]
                point.setdefault(row, {})[s] = [float(np.mean(v)), float(np.std(v))]
        point["train_seconds_per_fold"] = float(np.mean([f["train_seconds"] for f in folds]))
        curve.append(point)
    result = {"torch": torch.__version__, "threads": a.threads, "epochs": a.epochs, "points": curve}
    with open(os.path.join(a.curve, "pytorch", "learning-curve.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    print("| N per class | folds | glassnet 1-NN | PyTorch 1-NN | glassnet balanced / F1 | PyTorch balanced / F1 |",
          file=sys.stderr)
    print("|---|---|---|---|---|---|", file=sys.stderr)
    for p in curve:
        g, t = p["glassnet"], p["pytorch 1-NN"]
        gs = (f"{100 * g['accuracy'][0]:.2f} +- {100 * g['accuracy'][1]:.2f}%", 
              f"{100 * g['balanced_accuracy'][0]:.2f}% / {g['macro_f1'][0]:.3f}") if g else ("-", "-")
        print(f"| {p['per_class'] or 'all'} | {p['folds']}/{p['of']} | {gs[0]} | "
              f"{100 * t['accuracy'][0]:.2f} +- {100 * t['accuracy'][1]:.2f}% | {gs[1]} | "
              f"{100 * t['balanced_accuracy'][0]:.2f}% / {t['macro_f1'][0]:.3f} |", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
