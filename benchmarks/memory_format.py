"""GZS-Net training step in torch's two memory layouts: contiguous (NCHW) against channels-last (NHWC).

oneDNN's CPU convolutions and cuDNN's tensor-core kernels both prefer channels-last, so it may pay to keep weights
and images that way. Both layouts take optimiser steps on the same batches, interleaved step by step so that load
from other processes hits both alike; the ratio of their groups per second is printed. The default model is the
CPU recipe's (``GZSNet.recipes["cpu"]``). Run:
``.venv/bin/python benchmarks/memory_format.py [--resolution 64] [--batch 4] [--steps 20] [--device cpu]``.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from _common import apply_threads, machine, machine_lines, recipe_gzs_training, step_parser

from studio.methods.base import StepContext
from studio.methods.gzs import GZSNet
from studio.training.model_io import pick_device

#: name -> (weights' layout, images' layout); None keeps the images as ``TrainingData`` hands them out (a view of
#: its cached (N, H, W, 3) pixels, i.e. channels-last strides), which is what the trainer runs.
LAYOUTS = {"contiguous": (torch.contiguous_format, torch.contiguous_format),
           "channels-last": (torch.channels_last, torch.channels_last),
           "as trained": (torch.contiguous_format, None)}


def main() -> None:
    parser = step_parser(__doc__.split("\n\n")[0], device="auto")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per layout")
    args = parser.parse_args()
    apply_threads(args.threads)
    device = pick_device(args.device)
    config, data, context = recipe_gzs_training(args.resolution, device)
    ctx = StepContext(device, amp=True)
    models, optimizers = {}, {}
    for name, (layout, _) in LAYOUTS.items():
        torch.manual_seed(0)
        models[name] = GZSNet(config, context).to(device, memory_format=layout)
        optimizers[name] = models[name].make_optimizers()["model"]
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    for step in range(args.steps + 2):  # two warm-up rounds, not counted
        batch = models["contiguous"].sample_batch(data, rng, args.batch)
        for name, (_, layout) in LAYOUTS.items():
            model = models[name]
            laid = {k: v.contiguous(memory_format=layout) if layout is not None and torch.is_tensor(v) and v.dim() == 4
                    else v for k, v in batch.items()}
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with ctx.autocast(), model.cpu_autocast(device):
                losses = model.compute_losses(laid)
            model.apply_gradients(losses["loss"], optimizers[name], ctx)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 2:
                times[name].append(time.perf_counter() - start)
    print("\n".join(machine_lines(machine())))
    print(f"GZS-Net step, CPU recipe's model, {args.resolution} px, batch of {args.batch} groups, on {device} "
          f"({torch.get_num_threads()} threads), median of {args.steps} steps")
    rates = {name: args.batch / statistics.median(t) for name, t in times.items()}
    for name, rate in rates.items():
        print(f"{name:>14}: {rate:8.2f} groups/s  ({rate / rates['contiguous']:.2f}x contiguous)")


if __name__ == "__main__":
    main()
