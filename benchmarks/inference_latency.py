"""Inference latency of the model service: compose and interpolate, p50/p95, at 64 and 128 px.

Every call goes through ``ModelService`` exactly as the app and the CLI use it (blocking ``compose`` and
``interpolate``, torch on the service's inference worker). Four cases per method and resolution:

* compose, warm: every slot's items are already encoded (the latent cache hits); the slots interpolate between
  two items at a new ``t`` each time, as a slider drag does;
* compose, cold: one slot gets an item never encoded before (a drop from the browser), so the call encodes it;
* interpolate: every slot moves A to B together (the global slider), ``--frames`` frames in one call;
* a typed line: ``--glyphs`` compositions composed one worker job each (how lines were drawn before) and as one
  ``compose_batch`` call (how ``studio compose --text`` and the Text panel draw them now), interleaved.

Run: ``.venv/bin/python benchmarks/inference_latency.py [--methods gzs deae ...] [--resolutions 64 128]
[--checkpoint PATH] [--quick] [--json out.json]``.
"""

from __future__ import annotations

import time
from pathlib import Path

import _common as common
import numpy as np


def measure(method: str, resolution: int | None, args, report: common.Report, folder: Path) -> None:
    from studio.service.composition import Composition, ItemSource, SlotValue
    from studio.service.model_service import ModelService

    dataset = f"fonts:{args.preset},res={resolution}"
    path = common.model_for(args, method, dataset, folder / f"{method}-{resolution}", report)
    service = ModelService(device=args.device, cache_dir=folder / f"cache-{method}-{resolution}")
    try:
        started = time.perf_counter()
        info = service.load_checkpoint(path)
        load_s = time.perf_counter() - started
        size = len(service.dataset)
        slots = info.slot_names
        needed = 2 * len(slots) + args.repeats + 4
        if size < needed:
            raise SystemExit(f"{service.dataset.spec} has {size} items; this run needs {needed}: use a larger preset")
        pool = iter(np.random.default_rng(0).permutation(size).tolist())
        a_items = {s: next(pool) for s in slots}
        b_items = {s: next(pool) for s in slots}
        rng = np.random.default_rng(1)

        def moving(t: float) -> Composition:
            return Composition({s: SlotValue(a=ItemSource(a_items[s]), b=ItemSource(b_items[s]), t=t) for s in slots})

        service.compose(moving(0.5))  # encodes the A and B items once; the worker and torch warm up
        service.compose(moving(0.25))

        warm, cold, interp = [], [], []
        for _ in range(args.repeats):
            comp = moving(float(rng.random()))
            start = time.perf_counter()
            service.compose(comp)
            warm.append(time.perf_counter() - start)
        encoded_before = service.encoded_items
        for k in range(args.repeats):
            slot = slots[k % len(slots)]
            comp = moving(0.5).with_slot(slot, SlotValue(a=ItemSource(next(pool))))
            start = time.perf_counter()
            service.compose(comp)
            cold.append(time.perf_counter() - start)
        encoded = service.encoded_items - encoded_before
        for _ in range(max(2, args.repeats // 3)):
            start = time.perf_counter()
            frames = service.interpolate(moving(0.0), None, args.frames)
            interp.append(time.perf_counter() - start)
        assert len(frames) == args.frames and frames[0].shape[:2] == (info.resolution, info.resolution)
        # a typed line: its distinct glyphs composed one worker job each (as before) or as one batch (now)
        line = [moving(0.5).with_slot(slots[0], SlotValue(a=ItemSource(next(pool)))) for _ in range(args.glyphs)]
        service.compose_batch(line)  # encodes the glyphs' items once
        one_by_one, batched = [], []
        for _ in range(max(2, args.repeats // 3)):  # interleaved, so both meet the same load
            start = time.perf_counter()
            for future in [service.compose_async(c) for c in line]:
                future.result()
            one_by_one.append(time.perf_counter() - start)
            start = time.perf_counter()
            service.compose_batch(line)
            batched.append(time.perf_counter() - start)
    finally:
        service.shutdown(wait=True)

    for case, samples, extra in (("compose, warm cache", warm, {}),
                                 ("compose, cold: encodes 1 new item", cold, {"items_encoded": encoded}),
                                 (f"interpolate {args.frames} frames", interp, {"frames": args.frames}),
                                 (f"{args.glyphs} glyphs, one compose each", one_by_one, {"glyphs": args.glyphs}),
                                 (f"{args.glyphs} glyphs, compose_batch", batched, {"glyphs": args.glyphs})):
        report.add(method=method, resolution=info.resolution, case=case, device=service.device,
                   model_load_s=round(load_s, 2), **common.summarize(samples), **extra)


def main() -> None:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=["gzs"],
                   help="methods to measure: gzs deae lord adversarial mixing (default: gzs)")
    p.add_argument("--resolutions", type=int, nargs="+", default=None, help="default 64 128 (--quick: 64)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per case (default 30; --quick: 5)")
    p.add_argument("--frames", type=int, default=9, help="frames per interpolate call")
    p.add_argument("--glyphs", type=int, default=10, help="compositions of the typed-line case (a 10-letter line)")
    p.add_argument("--preset", default="small", help="Fonts preset the fresh models are built for")
    p.add_argument("--device", default="cpu", help="service device: cpu, cuda, auto")
    args = p.parse_args()
    info = common.machine()
    common.apply_threads(args.threads)
    info["torch_threads"] = __import__("torch").get_num_threads()
    args.repeats = args.repeats or (5 if args.quick else 30)
    resolutions = args.resolutions or ([64] if args.quick else [64, 128])
    if args.checkpoint:
        resolutions = [None]  # the checkpoint's own resolution
        if len(args.methods) > 1 or args.methods != ["gzs"]:
            print("note: --checkpoint measures that one model; --methods is ignored")
        from studio.training.model_io import load_model

        loaded = load_model(args.checkpoint)
        args.methods = [loaded.method.name]
        resolutions = [loaded.method.context.resolution]
        del loaded

    report = common.Report("inference_latency", info)
    report.start("Model service inference latency (compose / interpolate)")
    report.note("each compose and interpolate is one blocking ModelService call, timed around the call "
                "(queueing to the inference worker, latent lookup or encode, decode, conversion to uint8)")
    with common.work_dir("inference") as tmp:
        for method in args.methods:
            for res in resolutions:
                try:
                    measure(method, res, args, report, Path(tmp))
                except Exception as e:  # one method failing must not hide the others' figures
                    report.note(f"{method} at {res} px failed: {type(e).__name__}: {e}")
    rows = [(r["method"], r["resolution"], r["case"], r["n"], common.ms(r["p50_ms"]), common.ms(r["p95_ms"]),
             common.ms(r["max_ms"])) for r in report.results]
    report.table(f"latency per call on {report.results[0]['device'] if report.results else args.device} "
                 f"(ms; {args.repeats} calls per compose case)",
                 ["method", "px", "case", "n", "p50", "p95", "max"], rows)
    report.finish(args.json)


if __name__ == "__main__":
    main()
