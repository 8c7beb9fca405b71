"""Does ``torch.compile`` pay on our hot paths? Eager against compiled, measured side by side in one run.

Three paths, each timed call by call with the eager and the compiled version interleaved (so load from other
processes hits both alike), after a warm-up that includes the compile itself, whose time is printed apart:

* compose: the shipped Fonts model decodes one composition (batch 1), what every slider move costs;
* encode: the same model encodes a batch of dataset images, what filling the latent cache costs;
* train: one GZS-Net optimiser step (the CPU recipe's model; all four loss terms), what training costs.

A compile that saves a few milliseconds per call but costs a minute first is a loss for an app that should compose
within seconds of opening; the printed break-even count says how many calls it takes to win the compile back.
Run: ``.venv/bin/python benchmarks/compile_speedup.py [--threads 1] [--repeats 50] [--train-steps 20]
[--resolution 64] [--device cpu]``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from _common import apply_threads, machine, machine_lines, recipe_gzs_training, shipped_inputs, step_parser

from studio.methods.base import StepContext
from studio.methods.gzs import GZSNet
from studio.training.model_io import pick_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def side_by_side(calls: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, dict]:
    """First-call time (compile included), then ``repeats`` interleaved timed calls of each."""
    result: dict[str, dict] = {}
    for name, call in calls.items():
        _sync(device)
        start = time.perf_counter()
        call()
        _sync(device)
        result[name] = {"first_s": time.perf_counter() - start, "times": []}
    for call in calls.values():  # a second untimed call: compiled code may re-specialise once
        call()
    for _ in range(repeats):
        for name, call in calls.items():
            _sync(device)
            start = time.perf_counter()
            call()
            _sync(device)
            result[name]["times"].append(time.perf_counter() - start)
    return result


def report(title: str, result: dict[str, dict]) -> None:
    print(f"\n{title}")
    eager = statistics.median(result["eager"]["times"])
    for name, r in result.items():
        times = sorted(r["times"])
        p50, p95 = statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"  {name:>8}: p50 {1000 * p50:9.2f} ms, p95 {1000 * p95:9.2f} ms, first call {r['first_s']:7.2f} s"
              f"  ({eager / p50:.2f}x eager)")
    compiled = statistics.median(result["compiled"]["times"])
    saving = eager - compiled
    extra = result["compiled"]["first_s"] - result["eager"]["first_s"]
    if saving > 0:
        print(f"  the compile ({extra:.1f} s) is won back after {extra / saving:,.0f} calls")
    else:
        print(f"  the compiled version is not faster; its compile cost {extra:.1f} s")


def main() -> None:
    parser = step_parser(__doc__.split("\n\n")[0], shipped_model=True)
    parser.add_argument("--repeats", type=int, default=50, help="timed compose and encode calls of each version")
    parser.add_argument("--train-steps", type=int, default=20, help="timed training steps of each version")
    args = parser.parse_args()
    apply_threads(args.threads)
    info = machine()
    device = pick_device(args.device)

    method, images, latents = shipped_inputs(args.checkpoint, device, args.encode_batch)
    compiled_decode = torch.compile(method.decode)
    compiled_encode = torch.compile(method.encode)
    with torch.no_grad():
        compose = side_by_side({"eager": lambda: method.decode(latents),
                                "compiled": lambda: compiled_decode(latents)}, args.repeats, device)
        encode = side_by_side({"eager": lambda: method.encode(images),
                               "compiled": lambda: compiled_encode(images)}, max(5, args.repeats // 5), device)

    config, data, context = recipe_gzs_training(args.resolution, device)
    ctx = StepContext(device, amp=True)
    layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    models, optimizers, losses_of = {}, {}, {}
    for name in ("eager", "compiled"):
        torch.manual_seed(0)
        models[name] = GZSNet(config, context).to(device, memory_format=layout)
        optimizers[name] = models[name].make_optimizers()["model"]
        losses_of[name] = models[name].compute_losses if name == "eager" else torch.compile(models[name].compute_losses)
    rng = np.random.default_rng(0)
    batch = models["eager"].sample_batch(data, rng, args.batch)

    def step(name: str) -> Callable[[], object]:
        def run() -> object:
            model = models[name]
            with ctx.autocast(), model.cpu_autocast(device):
                losses = losses_of[name](batch)
            return model.apply_gradients(losses["loss"], optimizers[name], ctx)
        return run

    train = side_by_side({name: step(name) for name in ("eager", "compiled")}, args.train_steps, device)

    print("\n".join(machine_lines(info)))
    print(f"torch.compile (inductor) against eager on {device}, {torch.get_num_threads()} threads; "
          f"compose/encode: {args.checkpoint} ({method.context.resolution} px)")
    report("compose: decode one composition (batch 1)", compose)
    report(f"encode: {args.encode_batch} images", encode)
    report(f"train: one GZS-Net step, CPU recipe's model, {args.resolution} px, {args.batch} groups", train)


if __name__ == "__main__":
    main()
