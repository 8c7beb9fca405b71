"""Training throughput of every method (images/s) with its default config, on the CPU and, when present, CUDA.

Each step is what the Trainer's loop does: ``sample_batch`` (images gathered from the dataset) then
``training_step`` (every loss and optimiser update of the method), with the Trainer's defaults (batch 8, mixed
precision on). A few steps warm up first (allocator, oneDNN kernels, candidate tables); the figure is the median
of the timed steps. "Images per step" counts the input images a step reads (GZS-Net and DEAE read a group of
attributes + 2 images per batch entry; mixing reads each reference and its four quadrant candidates), so the
methods are compared on the pixels they consume. LORD is timed in both of its stages.

Run: ``.venv/bin/python benchmarks/method_throughput.py [--methods gzs ...] [--resolutions 32 64]
[--devices cpu cuda] [--batch 8] [--quick] [--json out.json]``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import _common as common
import numpy as np


def images_in(batch: dict[str, Any]) -> int:
    """Input images a batch holds: every float tensor shaped (..., 3, H, W) counts its leading elements."""
    import torch

    count = 0
    for value in batch.values():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() >= 4 \
                and value.shape[-3] == 3:
            count += int(np.prod(value.shape[:-3]))
    return count


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(method_name: str, dataset_spec: str, device_name: str, batch: int, warmup: int, steps: int,
            first_step: int = 0, config: Any = None) -> dict[str, Any]:
    import torch

    from studio.data.spec import open_dataset
    from studio.data.splits import ZeroShotSplit
    from studio.methods.base import MethodContext, StepContext
    from studio.methods.registry import get_method
    from studio.training.data import TrainingData
    from studio.training.model_io import pick_device
    from studio.training.trainer import SPLIT_SEED

    device = pick_device(device_name)
    dataset = open_dataset(dataset_spec)
    split = ZeroShotSplit.make(dataset.codes, 0.25, SPLIT_SEED)
    data = TrainingData(dataset, split, device)
    cls = get_method(method_name)
    torch.manual_seed(0)
    method = cls(config if config is not None else cls.config_class(),
                 MethodContext(dataset.schema, dataset.resolution, len(split.train))).to(device)
    method.train()
    optimizers = method.make_optimizers()
    started = time.perf_counter()
    method.on_train_start(data)
    setup_s = time.perf_counter() - started
    ctx = StepContext(device, True)
    rng = np.random.default_rng(0)
    times, per_step = [], 0
    for k in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        b = method.sample_batch(data, rng, batch)
        method.training_step(b, optimizers, first_step + k, ctx)
        sync(device)
        if k >= warmup:
            times.append(time.perf_counter() - start)
        per_step = images_in(b)
    seconds = statistics.median(times)
    params = sum(p.numel() for p in method.parameters())
    return {"seconds_per_step": round(seconds, 4), "steps_per_s": round(1 / seconds, 3),
            "images_per_step": per_step, "images_per_s": round(per_step / seconds, 1), "device": str(device),
            "parameters": params, "setup_s": round(setup_s, 2), "timed_steps": steps,
            "min_step_s": round(min(times), 4), "max_step_s": round(max(times), 4)}


def main() -> None:
    import torch

    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=["gzs", "deae", "lord", "adversarial", "mixing"])
    p.add_argument("--resolutions", type=int, nargs="+", default=None, help="default 32 64 (--quick: 32)")
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    p.add_argument("--batch", type=int, default=8, help="batch size handed to sample_batch (the Trainer's default)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 5; --quick: 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2; --quick: 1)")
    p.add_argument("--preset", default="tiny", help="Fonts preset the batches come from")
    args = p.parse_args()
    info = common.machine()
    common.apply_threads(args.threads)
    info["torch_threads"] = torch.get_num_threads()
    steps = args.steps or (2 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    resolutions = args.resolutions or ([32] if args.quick else [32, 64])
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    runs: list[tuple[str, str, int, Any]] = []  # method, dataset spec, first step, config
    report = common.Report("method_throughput", info)
    report.start("Training throughput per method (default configs)")
    if args.checkpoint:
        from studio.training.model_io import load_model

        loaded = load_model(args.checkpoint)
        spec = loaded.dataset_spec or f"fonts:{args.preset},res={loaded.method.context.resolution}"
        runs.append((loaded.method.name, spec, loaded.step, loaded.method.config))
        report.note(f"checkpoint {loaded.path}: its method and config, trained on from step {loaded.step} "
                    "(weights are not copied: the cost of a step does not depend on them)")
        del loaded
    else:
        report.note("fresh untrained networks built in memory with each method's default config (an untrained "
                    "network costs the same per step as a trained one)")
        for method in args.methods:
            for res in resolutions:
                spec = f"fonts:{args.preset},res={res}"
                runs.append((method, spec, 0, None))
                if method == "lord":
                    from studio.methods.lord import LordConfig

                    runs.append((method, spec, LordConfig().stage1_steps, None))
    report.note(f"batch {args.batch}, {warmup} warm-up + {steps} timed steps (median), mixed precision on")
    rows = []
    for device in devices:
        for method, spec, first, config in runs:
            label = method if method != "lord" or args.checkpoint else \
                f"lord stage {1 if first == 0 else 2}"
            try:
                r = measure(method, spec, device, args.batch, warmup, steps, first, config)
            except Exception as e:  # one method failing must not hide the others' figures
                report.note(f"{label} on {device} at {spec} failed: {type(e).__name__}: {e}")
                continue
            res = int(spec.rsplit("res=", 1)[1].split(",")[0]) if "res=" in spec else 0
            report.add(method=label, dataset=spec, resolution=res, **r)
            rows.append((label, r["device"], res, r["images_per_step"], f"{r['seconds_per_step'] * 1000:.0f}",
                         f"{r['steps_per_s']:.2f}", f"{r['images_per_s']:.1f}", f"{r['parameters'] / 1e6:.2f}"))
            print(f"  {label:<16} {r['device']:<6} {res:>4} px: {r['images_per_s']:8.1f} images/s", flush=True)
    report.table("training throughput", ["method", "device", "px", "images/step", "ms/step", "steps/s",
                                         "images/s", "M params"], rows)
    report.finish(args.json)


if __name__ == "__main__":
    main()
