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

from collections.abc import Callable

import numpy as np
import torch
from _common import apply_threads, machine, machine_lines, recipe_gzs_training, shipped_inputs, step_parser
from torch.profiler import ProfilerActivity, profile, record_function

from studio.methods.base import StepContext
from studio.methods.gzs import GZSNet
from studio.training.model_io import pick_device


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
    parser = step_parser(__doc__.split("\n\n")[0], shipped_model=True)
    parser.add_argument("--rows", type=int, default=12, help="operators listed per path")
    args = parser.parse_args()
    apply_threads(args.threads)
    info = machine()
    device = pick_device(args.device)
    print("\n".join(machine_lines(info)))

    method, images, latents = shipped_inputs(args.checkpoint, device, args.encode_batch)
    with torch.no_grad():
        profiled(f"compose: decode one composition ({method.context.resolution} px, {args.checkpoint})",
                 lambda: method.decode(latents), 50, device, args.rows)
        profiled(f"encode: {args.encode_batch} images", lambda: method.encode(images), 5, device, args.rows)

    config, data, context = recipe_gzs_training(args.resolution, device)
    model = GZSNet(config, context).to(device)
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
