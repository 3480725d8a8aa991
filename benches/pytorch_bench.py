#!/usr/bin/env python3
"""PyTorch's rates for glassnet's network (--pooling avg-max or flatten, --norm none or batch:
the same flags as `glassnet bench`) on any torch device, measured the way
`glassnet bench` measures its own: training images/s at 96 images per step (32 triplets,
forward + backward + Adam, the loss read back every step), inference images/s at batch 64 and
the median latency at batch 1. The network, loss and optimiser are imported from the peers'
reference script (../shared/peers/pytorch_triplet.py), so both sides run the same model.

    python3 benches/pytorch_bench.py --peers ../shared/peers --device cuda [--threads N]

On CUDA every timed region ends with torch.cuda.synchronize(), and the run is repeated with
cudnn.benchmark on (PyTorch's own per-shape autotune) so the faster of the two can be quoted,
and once more in strict fp32 (TF32 tensor cores off, as glassnet's fp32 shaders).
Prints one JSON object.
"""
import argparse
import importlib.util
import json
import os
import statistics
import time

import torch


def load_peer(peers):
    spec = importlib.util.spec_from_file_location("pytorch_triplet", os.path.join(peers, "pytorch_triplet.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_net(ref, pooling, norm, head="sigmoid", in_channels=1):
    """The reference network as glassnet's `--pooling` and `--norm` shape it: avg-max puts each
    channel's global mean and maximum of the last 7x7 map (means first) into the dense layer,
    256 -> 64; batch puts a BatchNorm2d (eps 1e-5, momentum 0.1, as glassnet) after each
    convolution. Both left at their reference values: the reference network itself. `head`:
    the paper's sigmoid, or "l2" (the robust recipe's unit-length embedding). `in_channels`:
    1 (grey) or 3 (glassnet's `--colour rgb`: red, green, blue planes into the first conv)."""
    import torch.nn as nn
    import torch.nn.functional as F

    class Net(ref.RefNet):
        def __init__(self, emb_dim=64):
            super().__init__(emb_dim)
            if in_channels != self.c1.in_channels:
                c = self.c1
                self.c1 = nn.Conv2d(in_channels, c.out_channels, c.kernel_size, padding=c.padding)
            convs = (self.c1, self.c2, self.c3, self.c4)
            if pooling == "avg-max":
                self.fc = nn.Linear(2 * 128, emb_dim)
            self.bns = nn.ModuleList(
                nn.BatchNorm2d(c.out_channels) if norm == "batch" else nn.Identity() for c in convs)

        def forward(self, x):
            for c, bn in zip((self.c1, self.c2, self.c3, self.c4), self.bns):
                x = F.max_pool2d(F.relu(bn(c(x))), 2)
            if pooling == "avg-max":
                x = torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)
            else:
                x = x.flatten(1)
            x = self.fc(x)
            return F.normalize(x, dim=1) if head == "l2" else torch.sigmoid(x)

    return Net


def rates(ref, device, steps, pooling="flatten", norm="none"):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    net = make_net(ref, pooling, norm)().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=ref.LR)
    xb = torch.randn(3 * ref.BATCH, 1, ref.SIZE, ref.SIZE, device=device)
    net.train()
    for _ in range(5):
        ref.train_step(net, opt, xb)
    sync()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        ref.train_step(net, opt, xb)  # reads the loss back: a sync per step, as in glassnet
        sync()
        times.append(time.perf_counter() - t)
    res = {"train_images_per_s": 3 * ref.BATCH / statistics.median(times)}
    net.eval()
    x64 = torch.randn(64, 1, ref.SIZE, ref.SIZE, device=device)
    x1 = x64[:1].contiguous()
    with torch.no_grad():
        for x, key, scale in ((x64, "infer_b64_images_per_s", 64.0), (x1, "latency_b1_ms", None)):
            for _ in range(5):
                net(x).cpu()
            times = []
            for _ in range(steps * (3 if scale is None else 1)):
                t = time.perf_counter()
                net(x).cpu()  # the embedding back on the host, as glassnet returns it
                times.append(time.perf_counter() - t)
            m = statistics.median(times)
            res[key] = scale / m if scale else m * 1e3
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "peers"))
    ap.add_argument("--device", default="cpu", help="torch device: cpu, cuda, mps, ...")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=50, help="timed repetitions (the median is used)")
    ap.add_argument("--pooling", choices=["flatten", "avg-max"], default="avg-max",
                    help="the dense layer's input, as glassnet's --pooling")
    ap.add_argument("--norm", choices=["none", "batch"], default="none",
                    help="what follows each convolution, as glassnet's --norm")
    args = ap.parse_args()
    ref = load_peer(args.peers)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out = {"torch": torch.__version__, "device": args.device, "threads": args.threads, "pooling": args.pooling, "norm": args.norm}
    if device.type == "cuda":
        out["device_name"] = torch.cuda.get_device_name(device)
        torch.backends.cudnn.benchmark = False
        out["default"] = rates(ref, device, args.steps, args.pooling, args.norm)
        torch.backends.cudnn.benchmark = True
        out["cudnn_benchmark"] = rates(ref, device, args.steps, args.pooling, args.norm)
        # PyTorch's default lets cuDNN run fp32 convolutions on TF32 tensor cores (10-bit
        # mantissa products); glassnet's shaders compute in full fp32, as does this run.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        out["fp32_strict"] = rates(ref, device, args.steps, args.pooling, args.norm)
        best = lambda k, hi: (max if hi else min)(out["default"][k], out["cudnn_benchmark"][k])
        out["best"] = {
            "train_images_per_s": best("train_images_per_s", True),
            "infer_b64_images_per_s": best("infer_b64_images_per_s", True),
            "latency_b1_ms": best("latency_b1_ms", False),
        }
    else:
        out["best"] = rates(ref, device, args.steps, args.pooling, args.norm)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
