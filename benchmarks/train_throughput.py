"""GZS-Net training throughput: our batched step against the same math run one call per role and per swap.

The batched step encodes every group image in one encoder call and decodes every swapped latent in one decoder
call; the reference (``tests/gzs_reference.py``) makes one call per group role and per swap, as the public
code does. Both take optimiser steps on the same batches, interleaved step by step so that load from other
processes hits both alike, and the ratio of their groups per second is printed per resolution. Run:
``.venv/bin/python benchmarks/train_throughput.py [--resolutions 64 128] [--batch 8] [--steps 6] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from studio.data.spec import open_dataset
from studio.data.splits import ZeroShotSplit
from studio.methods.base import MethodContext, StepContext
from studio.methods.gzs import GZSConfig, GZSNet, cpu_supports_bfloat16
from studio.training.data import TrainingData
from studio.training.model_io import pick_device

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the reference lives with its test
from gzs_reference import unbatched_losses


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(resolution: int, batch: int, steps: int, device: torch.device, config: GZSConfig,
            preset: str) -> dict[str, float]:
    dataset = open_dataset(f"fonts:{preset},res={resolution}")
    data = TrainingData(dataset, ZeroShotSplit.make(dataset.codes), device)
    context = MethodContext(dataset.schema, resolution, len(data.train_indices))
    torch.manual_seed(0)
    model = GZSNet(config, context).to(device)
    optimizer = model.make_optimizers()["model"]
    ctx = StepContext(device, amp=True)
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {"batched": [], "unbatched": []}

    def step_with(losses_fn):
        # Both paths run in the same precision and take the same optimiser step; only the call pattern differs.
        def take(b):
            with ctx.autocast(), model.cpu_autocast(device):
                losses = losses_fn(model, b)
            model.apply_gradients(losses["loss"], optimizer, ctx)
        return take

    batched, unbatched = step_with(GZSNet.compute_losses), step_with(unbatched_losses)

    for step in range(steps + 1):  # the first round warms up both paths and is not counted
        for name, fn in (("batched", batched), ("unbatched", unbatched)):
            b = model.sample_batch(data, rng, batch)
            sync(device)
            start = time.perf_counter()
            fn(b)
            sync(device)
            if step > 0:
                times[name].append(time.perf_counter() - start)
    return {name: batch / statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch", type=int, default=8, help="groups per step")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per path and resolution")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--preset", default="tiny", help="Fonts preset the groups come from")
    parser.add_argument("--width", type=int, default=GZSConfig.width)
    parser.add_argument("--hidden", type=int, default=GZSConfig.hidden)
    parser.add_argument("--float32", action="store_true", help="no bfloat16 autocast on the CPU")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    config = GZSConfig(width=args.width, hidden=args.hidden, cpu_bfloat16=not args.float32)
    if device.type == "cuda":
        precision = f"{str(StepContext(device, amp=True).amp_dtype).removeprefix('torch.')} autocast"
    elif device.type == "cpu" and config.cpu_bfloat16 and cpu_supports_bfloat16():
        precision = "bfloat16 autocast"
    else:
        precision = "float32"
    print(f"GZS-Net step throughput on {device} ({torch.get_num_threads()} threads), batch of {args.batch} groups, "
          f"width {config.width}, hidden {config.hidden}, {precision}, all four loss terms, "
          f"median of {args.steps} steps")
    print(f"{'res':>5} {'batched groups/s':>17} {'unbatched groups/s':>19} {'speed-up':>9}")
    for res in args.resolutions:
        rates = measure(res, args.batch, args.steps, device, config, args.preset)
        print(f"{res:>5} {rates['batched']:>17.2f} {rates['unbatched']:>19.2f} "
              f"{rates['batched'] / rates['unbatched']:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
