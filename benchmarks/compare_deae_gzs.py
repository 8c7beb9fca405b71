"""One report: DEAE against GZS-Net trained for the same steps on the same data (interpolation quality, paper 003
section 3.2), and LORD against GZS-Net on class leakage (paper 001, Table 2: the class from the content side).

Evaluate existing runs:

    .venv/bin/python benchmarks/compare_deae_gzs.py --gzs RUN --deae RUN [--lord RUN] [--max-items 300]

or train the GZS-Net/DEAE pair first (identical options and seed; DEAE adds only its regulariser):

    .venv/bin/python benchmarks/compare_deae_gzs.py --train-dir /tmp/pair --dataset fonts:small,res=32 \
        --steps 1500 --batch 4 --option width=16 --option hidden=256 --option residual_blocks=1 [--lord RUN]

Figures: ``deviation`` is how far the re-encoded untouched slots moved when one slot was interpolated, relative
to the distance between two items' slots (lower is better); ``kept agree`` is how often an image classifier still
reads the untouched attributes as before; ``class from content`` is the accuracy of a probe predicting the class
attribute from the other slots (chance is best).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from studio.evaluation.deae_eval import interpolation_quality
from studio.evaluation.lord_eval import class_attribute_of, class_leakage
from studio.evaluation.suite import (
    EvalContext,
    checkpoint_info,
    fmt,
    jsonable,
    make_context,
    run_evaluations,
    text_table,
)
from studio.training.trainer import Trainer, TrainerCallbacks, TrainSettings


def train_pair(args: argparse.Namespace) -> tuple[Path, Path]:
    """GZS-Net and DEAE with the same options, seed and steps; returns their run folders."""
    options: dict[str, Any] = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"--option {item!r}: give NAME=VALUE")
        options[key.replace("-", "_")] = value
    runs = {}
    for method in ("gzs", "deae"):
        out = Path(args.train_dir) / method
        settings = TrainSettings(method=method, dataset=args.dataset, out=out, steps=args.steps, batch=args.batch,
                                 device=args.device, seed=args.seed, resume=(out / "checkpoints").exists(),
                                 checkpoint_every=max(1, args.steps // 4), sample_every=max(1, args.steps // 4),
                                 method_options=dict(options))
        began = time.perf_counter()
        Trainer(settings, TrainerCallbacks(on_log=lambda m: print(m, file=sys.stderr))).run()
        print(f"{method}: {args.steps} steps in {(time.perf_counter() - began) / 60:.1f} min", file=sys.stderr)
        runs[method] = out
    return runs["gzs"], runs["deae"]


def interpolation_section(gzs: EvalContext, deae: EvalContext, classifier: bool) -> tuple[str, dict[str, Any]]:
    results = {name: interpolation_quality(ctx, use_classifier=classifier) for name, ctx in
               (("gzs", gzs), ("deae", deae))}
    rows = []
    for g, d in zip(results["gzs"]["per_slot"], results["deae"]["per_slot"]):
        rows.append([g["attribute"], g["deviation"], d["deviation"], g["kept_agreement"], d["kept_agreement"]])
    rows.append(["mean", results["gzs"]["deviation"], results["deae"]["deviation"],
                 results["gzs"].get("kept_agreement"), results["deae"].get("kept_agreement")])
    rows.append(["(reconstruction only)", results["gzs"]["reconstruction_deviation"],
                 results["deae"]["reconstruction_deviation"],
                 results["gzs"].get("classifier_agreement_reconstruction"),
                 results["deae"].get("classifier_agreement_reconstruction")])
    table = text_table(["interpolated slot", "GZS dev", "DEAE dev", "GZS kept", "DEAE kept"], rows, digits=3)
    raw = (f"raw mean squared deviation: GZS {fmt(results['gzs']['deviation_raw'], 4)}, "
           f"DEAE {fmt(results['deae']['deviation_raw'], 4)} (latent units; scales differ between models)")
    return f"{table}\n{raw}\n{results['gzs']['n_pairs']} held-out pairs", results


def quality_section(contexts: dict[str, EvalContext]) -> tuple[str, dict[str, Any]]:
    """Zero-shot synthesis and reconstruction, so a gain in interpolation is not bought with image quality."""
    results = {name: run_evaluations(ctx, ["zero_shot"])["zero_shot"] for name, ctx in contexts.items()}
    rows = [[name, r.get("mse"), r.get("psnr"), r.get("ssim")] for name, r in results.items()]
    return text_table(["zero-shot synthesis", "MSE", "PSNR dB", "SSIM"], rows, digits=4), results


def leakage_section(contexts: dict[str, EvalContext]) -> tuple[str, dict[str, Any]]:
    attribute = class_attribute_of(contexts["lord"].method)
    results = {name: class_leakage(ctx, attribute) for name, ctx in contexts.items()}
    rows = []
    for name, r in results.items():
        rows.append([f"{name} ({'+'.join(r['content_slots'])})" if name != "lord" else "lord (content)",
                     r["class_from_content"], r["class_from_content_chance"], r["class_from_class"],
                     r["others_from_class_excess"]])
    table = text_table([f"{attribute} from content side", "accuracy", "chance", "from class side",
                        "others from class, above chance"], rows, digits=3)
    return table, results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gzs", help="GZS-Net run folder or checkpoint")
    p.add_argument("--deae", help="DEAE run folder or checkpoint")
    p.add_argument("--lord", help="LORD run folder or checkpoint (adds the class-leakage comparison with --gzs)")
    p.add_argument("--train-dir", help="train the GZS-Net/DEAE pair into this folder first")
    p.add_argument("--dataset", default="fonts:small,res=32", help="with --train-dir: dataset spec")
    p.add_argument("--steps", type=int, default=1500, help="with --train-dir: steps of each run")
    p.add_argument("--batch", type=int, default=4, help="with --train-dir: groups per step")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="with --train-dir: a method option for both runs (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-items", type=int, default=300, help="held-out items per evaluation")
    p.add_argument("--no-classifier", action="store_true", help="skip the image classifier (faster)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = p.parse_args(argv)
    if args.train_dir:
        args.gzs, args.deae = train_pair(args)
    if not args.gzs:
        p.error("give --gzs (and --deae and/or --lord), or --train-dir to train a pair")
    contexts = {"gzs": make_context(args.gzs, device=args.device, max_items=args.max_items, seed=args.seed)}
    for name in ("deae", "lord"):
        path = getattr(args, name)
        if path:
            contexts[name] = make_context(path, device=args.device, max_items=args.max_items, seed=args.seed)
    report: dict[str, Any] = {"checkpoints": {n: checkpoint_info(c) for n, c in contexts.items()}}
    lines = ["models"] + [f"  {n:<5} {c.loaded.path} (step {c.loaded.step}, {c.dataset.spec})"
                          for n, c in contexts.items()]
    if "deae" in contexts:
        text, report["interpolation"] = interpolation_section(contexts["gzs"], contexts["deae"],
                                                              not args.no_classifier)
        lines += ["", "== Interpolation quality: DEAE vs GZS-Net (paper 003, section 3.2)", text]
        text, report["zero_shot"] = quality_section({n: contexts[n] for n in ("gzs", "deae")})
        lines += ["", "== Image quality of the same models (paper 000, Table 2)", text]
    if "lord" in contexts:
        text, report["class_leakage"] = leakage_section({n: contexts[n] for n in ("lord", "gzs")})
        lines += ["", "== Class leakage: LORD vs GZS-Net (paper 001, Table 2; held-out items, encoded)", text]
    print(json.dumps(jsonable(report), indent=1) if args.json else "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
