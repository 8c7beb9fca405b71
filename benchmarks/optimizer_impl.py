"""A GZS-Net training step with each of torch's Adam implementations: one loop over the parameters (the CPU's
default), ``foreach`` (a few multi-tensor kernels) and ``fused`` (one kernel per parameter).

``profile_hot_paths.py`` showed Adam's elementwise passes (sqrt, div, addcdiv, ...) taking about a fifth of a CPU
step of the CPU recipe's model, whose two fully connected layers hold most of its 3 million weights. Three copies of
the model take optimiser steps on the same batches, interleaved step by step; groups/s of each and the ratio to the
default loop are printed, plus the time of the optimiser step alone.
Run: ``.venv/bin/python benchmarks/optimizer_impl.py [--resolution 64] [--batch 4] [--steps 20] [--threads 1]``.
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

IMPLEMENTATIONS = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def main() -> None:
    parser = step_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per implementation")
    args = parser.parse_args()
    apply_threads(args.threads)
    info = machine()
    device = pick_device(args.device)
    config, data, context = recipe_gzs_training(args.resolution, device)
    ctx = StepContext(device, amp=True)
    layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    models, optimizers = {}, {}
    for name, kind in IMPLEMENTATIONS.items():
        torch.manual_seed(0)
        models[name] = GZSNet(config, context).to(device, memory_format=layout)
        optimizers[name] = torch.optim.Adam(models[name].parameters(), lr=config.lr,
                                            betas=(config.beta1, config.beta2), **kind)
    weights = sum(p.numel() for p in models["loop"].parameters())
    rng = np.random.default_rng(0)
    step_times: dict[str, list[float]] = {name: [] for name in IMPLEMENTATIONS}
    optim_times: dict[str, list[float]] = {name: [] for name in IMPLEMENTATIONS}
    for step in range(args.steps + 2):  # two warm-up rounds, not counted
        batch = models["loop"].sample_batch(data, rng, args.batch)
        for name, model in models.items():
            optimizer = optimizers[name]
            start = time.perf_counter()
            with ctx.autocast(), model.cpu_autocast(device):
                losses = model.compute_losses(batch)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            before_step = time.perf_counter()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            end = time.perf_counter()
            if step >= 2:
                step_times[name].append(end - start)
                optim_times[name].append(end - before_step)
    print("\n".join(machine_lines(info)))
    print(f"GZS-Net step, CPU recipe's model ({weights / 1e6:.2f} M weights), {args.resolution} px, batch of "
          f"{args.batch} groups, on {device} ({torch.get_num_threads()} threads), median of {args.steps} steps")
    rates = {name: args.batch / statistics.median(t) for name, t in step_times.items()}
    for name, rate in rates.items():
        print(f"{name:>8}: {rate:8.2f} groups/s  ({rate / rates['loop']:.2f}x loop); optimiser step "
              f"{1000 * statistics.median(optim_times[name]):6.2f} ms")


if __name__ == "__main__":
    main()
