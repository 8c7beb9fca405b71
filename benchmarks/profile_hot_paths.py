"""Where the time goes: torch.profiler on the hot paths, before deciding what to speed up.

Three paths, each run a few times under ``torch.profiler`` (CPU activities, and CUDA when the device is a GPU):

* compose: the shipped Fonts model decodes one composition (batch 1), what every slider move costs;
* encode: the same model encodes a batch of dataset images, what filling the latent cache costs;
* train: GZS-Net training steps exactly as the Trainer takes them (batch sampling from the pixel cache, the four
  loss terms under the CPU's bfloat16 autocast, backward, Adam), channels-last weights on the CPU.

For each, the operators with the most self time and their share of the whole, so the biggest cost is plain.
Run: ``.venv/bin/python benchmarks/profile_hot_paths.py [--threads 1] [--rows 12] [--device cpu]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _common import machine, machine_lines
from torch.profiler import ProfilerActivity, profile, record_function

from studio.data.spec import open_dataset
from studio.data.splits import ZeroShotSplit
from studio.methods.base import MethodContext, StepContext
from studio.methods.gzs import GZSConfig, GZSNet
from studio.training.data import TrainingData, to_tensor
from studio.training.model_io import load_model, pick_device

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "fonts-gzs" / "model.safetensors"


def profiled(title: str, call: Callable[[], object], calls: int, device: torch.device, rows: int) -> None:
    """Warm up, then profile ``calls`` calls and print the operators with the most self time."""
    for _ in range(2):
        call()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(calls):
            with record_function("call"):
                call()
        if device.type == "cuda":
            torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.key != "call"]
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    total = sum(getattr(e, key) for e in events) or 1.0
    print(f"\n{title}: {calls} calls, {total / 1000 / calls:.2f} ms of operator self time per call")
    print(f"  {'operator':<44} {'self ms/call':>12} {'share':>7} {'calls/call':>10}")
    for e in sorted(events, key=lambda e: getattr(e, key), reverse=True)[:rows]:
        value = getattr(e, key)
        print(f"  {e.key[:44]:<44} {value / 1000 / calls:12.3f} {100 * value / total:6.1f}% {e.count / calls:10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(SHIPPED), help="model for compose and encode")
    parser.add_argument("--resolution", type=int, default=64, help="resolution of the training-step model")
    parser.add_argument("--batch", type=int, default=4, help="groups per training step")
    parser.add_argument("--encode-batch", type=int, default=64)
    parser.add_argument("--rows", type=int, default=12, help="operators listed per path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    device = pick_device(args.device)
    print("\n".join(machine_lines(info)))

    loaded = load_model(args.checkpoint, device)
    method = loaded.method.eval()
    dataset = open_dataset(f"{loaded.dataset_spec},res={method.context.resolution}")
    images = to_tensor(dataset.images(np.arange(args.encode_batch)), device)
    with torch.no_grad():
        latents = {k: v[:1].clone() for k, v in method.encode(images[:1]).items()}
        profiled(f"compose: decode one composition ({method.context.resolution} px, {args.checkpoint})",
                 lambda: method.decode(latents), 50, device, args.rows)
        profiled(f"encode: {args.encode_batch} images", lambda: method.encode(images), 5, device, args.rows)

    config = GZSConfig(**GZSNet.recipes["cpu"].options)
    train_set = open_dataset(f"fonts:small,res={args.resolution}")
    data = TrainingData(train_set, ZeroShotSplit.make(train_set.codes), device)
    model = GZSNet(config, MethodContext(train_set.schema, args.resolution, len(data.train_indices))).to(device)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    optimizers = model.make_optimizers()
    ctx = StepContext(device, amp=True)
    rng = np.random.default_rng(0)

    def step() -> object:
        with record_function("sample_batch"):
            batch = model.sample_batch(data, rng, args.batch)
        return model.training_step(batch, optimizers, 0, ctx)

    profiled(f"train: GZS-Net step, CPU recipe's model, {args.resolution} px, {args.batch} groups", step, 10, device,
             args.rows)


if __name__ == "__main__":
    main()
