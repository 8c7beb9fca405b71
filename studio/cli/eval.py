"""``studio eval RUN_OR_CHECKPOINT``: judge a trained model with every evaluation that applies to it."""

from __future__ import annotations

import argparse
import json
import sys

from studio.evaluation.suite import (
    DEFAULT_MAX_ITEMS,
    checkpoint_info,
    format_report,
    jsonable,
    make_context,
    run_evaluations,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a checkpoint: zero-shot synthesis, co-prediction, reconstruction",
        description="Evaluate a checkpoint (or a run directory's newest checkpoint) on the data it was trained on: "
                    "zero-shot synthesis of held-out combinations (paper 000, Table 2), attribute co-prediction "
                    "(Table 1), reconstruction, and any method-specific evaluation.")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT", help="run directory or .safetensors checkpoint")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--only", nargs="+", action="extend", metavar="NAME",
                   help="run only these evaluations (e.g. zero_shot coprediction reconstruction)")
    p.add_argument("--max-items", type=int, default=DEFAULT_MAX_ITEMS,
                   help=f"at most this many items per evaluation and part, drawn at random "
                        f"(default {DEFAULT_MAX_ITEMS}; keeps a CPU run quick)")
    p.add_argument("--dataset", metavar="SPEC", help="evaluate on this dataset instead of the checkpoint's own")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    p.add_argument("--seed", type=int, default=0, help="seed for item sampling and probe initialisation")
    p.add_argument("--protocol", choices=["strict", "greedy", "both"], default="both",
                   help="zero-shot queries: strict (each attribute from its own training image sharing only that "
                        "attribute with the target, as in paper 000 Fig. 4), greedy (the set cover: fewest images) "
                        "or both (default)")
    add_judge_steps(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    ctx = make_context(args.checkpoint, dataset=args.dataset, device=args.device, max_items=args.max_items,
                       seed=args.seed, protocol=args.protocol,
                       judge_steps=args.judge_steps)
    info = checkpoint_info(ctx)

    def announce(e) -> None:
        if not args.json:
            print(f"running {e.name} ...", file=sys.stderr, flush=True)

    results = run_evaluations(ctx, args.only, on_start=announce)
    if args.json:
        print(json.dumps(jsonable({"checkpoint": info, **results}), indent=1))
    else:
        print(format_report(info, results))
    return 0


def add_judge_steps(parser: argparse.ArgumentParser) -> None:
    """``--judge-steps``, shared with ``studio ship-model`` so a card's judge can be the one ``studio eval`` used."""
    parser.add_argument("--judge-steps", type=int, default=None, metavar="N",
                        help="training steps of the judge, the classifier of real images that reads the syntheses "
                             "(default: 400 for up to 33 attribute values in all, growing with the square of the "
                             "values beyond, e.g. 3,500 for the full Fonts' 97; trained once per dataset and cached)")
