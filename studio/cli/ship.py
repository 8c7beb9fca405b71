"""``studio ship-model RUN OUT_DIR``: turn a trained run into a shipped model with its model card.

The card records the data, method, config, the command that trained it, steps, hardware and the figures that
``studio eval`` printed for it, so anyone can reproduce or judge it.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import torch

from studio.cli.eval import add_judge_steps
from studio.evaluation.suite import checkpoint_info, format_report, jsonable, make_context, run_evaluations
from studio.training.checkpoint import atomic_write_bytes, atomic_write_json
from studio.training.model_io import load_model, save_checkpoint


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ship-model", help="copy a run's newest checkpoint (fp16) into models/ with a card",
                              description="Write OUT_DIR/model.safetensors (+ .json, fp16 weights, no optimiser "
                                          "state), then evaluate it and write OUT_DIR/card.json and README.md.")
    p.add_argument("run_dir", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("out", metavar="OUT_DIR", type=Path)
    p.add_argument("--command", default="", help="the training command, recorded in the card")
    p.add_argument("--hardware", default="", help="where it was trained (default: this machine)")
    p.add_argument("--wall-minutes", type=float, default=0.0, help="training wall time, recorded in the card")
    p.add_argument("--max-items", type=int, default=500, help="items per evaluation (see studio eval)")
    p.add_argument("--only", nargs="+", action="extend", metavar="NAME", help="run only these evaluations")
    p.add_argument("--protocol", choices=["strict", "greedy", "both"], default="both",
                   help="zero-shot query protocol(s) for the card (see studio eval; default both)")
    add_judge_steps(p)
    p.add_argument("--note", default="", help="a sentence for the card (e.g. what the figures fall short of)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_model(args.run_dir, "cpu")
    meta = {k: loaded.meta[k] for k in ("dataset", "split", "settings", "metrics") if k in loaded.meta}
    target = save_checkpoint(args.out / "model", loaded.method, step=loaded.step, meta=meta, half=True)
    ctx = make_context(target, max_items=args.max_items, protocol=args.protocol, judge_steps=args.judge_steps)
    results = jsonable(run_evaluations(ctx, args.only))
    info = checkpoint_info(ctx)
    hardware = args.hardware or f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    card: dict[str, Any] = {
        "name": args.out.name,
        "method": loaded.method.name,
        "dataset": info["dataset"],
        "dataset_fingerprint": info["dataset_fingerprint"],
        "config": loaded.meta.get("config", {}),
        "slots": loaded.meta.get("slots", []),
        "steps": loaded.step,
        "training_command": args.command,
        "hardware": hardware,
        "wall_minutes": args.wall_minutes,
        "weights": "float16 (loaded as float32)",
        "evaluation": results,
        "note": args.note,
    }
    atomic_write_json(args.out / "card.json", card)
    text = [f"# {args.out.name}", "", f"{loaded.method.title or loaded.method.name} on `{info['dataset']}`, "
            f"{loaded.step} steps, trained on {hardware}"
            + (f" in {args.wall_minutes:.0f} min" if args.wall_minutes else "") + ".", ""]
    if args.command:
        text += ["Reproduce:", "", "```bash", args.command, "```", ""]
    if args.note:
        text += [args.note, ""]
    text += ["Figures printed by `studio eval` for this file:", "", "```", format_report(info, results), "```", ""]
    atomic_write_bytes(args.out / "README.md", "\n".join(text).encode())
    print(json.dumps({"model": str(target), "card": str(args.out / "card.json")}))
    return 0
