"""``studio train``: train any method from the command line, with its options generated from its config class.

The chosen ``--method`` decides which option flags exist, so the parser reads ``--method`` first and then adds
that method's flags (names, defaults, help, choices and bounds all come from the config dataclass).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.methods.config import ConfigField, config_fields, parse_value
from studio.methods.registry import get_method, method_names
from studio.training import distributed
from studio.training.trainer import LR_DECAYS, ProgressEvent, Trainer, TrainerCallbacks, TrainSettings

DEFAULT_METHOD = "gzs"
OPTION_PREFIX = "method_option__"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a method on a dataset",
        description="Train a disentangling autoencoder. Method options (after the general ones) depend on "
                    "--method; `studio train --method NAME --help` lists them with their defaults.")
    parser.before_parse(add_method_options)  # the chosen --method's options, before the rest is parsed
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=method_names(), help="method to train")
    parser.add_argument("--dataset", required=True, help="dataset spec: fonts:small, fonts:tiny,res=32, a folder")
    parser.add_argument("--out", required=True, type=Path, help="run directory (checkpoints, logs, samples)")
    parser.add_argument("--steps", type=int, default=None, help="total optimisation steps (default: the method's)")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size: groups for gzs/deae, images otherwise (default: the method's); under "
                             "torchrun, per process: the global batch is N times the process count")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    parser.add_argument("--minutes", type=float, default=0.0, metavar="M",
                        help="stop after M minutes of training, saving a checkpoint (--resume continues); 0: no limit")
    parser.add_argument("--lr-decay", default=None, choices=LR_DECAYS,
                        help="learning-rate schedule over --steps (or --budget-minutes): constant (none, the default), "
                             "or cosine or linear decay to zero at the end (a short run ends sharper with one); "
                             "--resume keeps the run's")
    parser.add_argument("--budget-minutes", type=float, default=None, metavar="M",
                        help="total training time of the run, over all its resumes: it ends when M minutes are spent "
                             "(or at --steps), and --lr-decay follows whichever of the two is nearer, so a slow or "
                             "busy machine still finishes the schedule; 0: none; --resume keeps the run's")
    parser.add_argument("--recipe", default="auto", metavar="NAME",
                        help="a measured set of settings and method options that fills in every value this command "
                             "leaves unset: auto (the method's 'cpu' recipe when training on a CPU, else none), "
                             "none, or a recipe's name (`--method NAME --help` lists the method's); not used with "
                             "--resume, which keeps the run's own, nor by auto with --init-from")
    parser.add_argument("--seed", type=int, default=0, help="seed for initial weights and batch sampling")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    parser.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                        help="fine-tune: start from these weights (same method and slots)")
    parser.add_argument("--checkpoint-every", type=int, default=500, metavar="N", help="steps between checkpoints")
    parser.add_argument("--sample-every", type=int, default=250, metavar="N", help="steps between sample grids")
    parser.add_argument("--log-every", type=int, default=25, metavar="N", help="steps between metrics lines")
    parser.add_argument("--keep-checkpoints", type=int, default=5, metavar="N",
                        help="numbered checkpoints to keep (checkpoints/last always stays)")
    parser.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    parser.add_argument("--test-fraction", type=float, default=0.25, help="held-out share of attribute combinations")
    parser.add_argument("--threads", default="auto", metavar="N",
                        help="CPU threads for torch, or auto: one per idle core, re-checked as training goes (on a "
                             "busy CPU, threads that wait for each other are many times slower than one thread)")
    parser.set_defaults(run=run)


def add_method_options(parser: argparse.ArgumentParser, args: list[str]) -> None:
    """Add the config options of the method ``args`` name (``--method``, else the default) to ``parser``, once."""
    method = _peek_method(args)
    if getattr(parser, "studio_method_options", None) is not None or method not in method_names():
        return
    cls = get_method(method)
    taken = set(parser._option_string_actions)
    recipes = "".join(f" Recipe '{name}': {r.summary}." for name, r in cls.recipes.items())
    group = parser.add_argument_group(f"{method} options", f"{cls.config_class.__doc__}{recipes}")
    for f in config_fields(cls.config_class):
        flag = f"--{f.name.replace('_', '-')}"
        if flag in taken:
            flag = f"--{method}-{f.name.replace('_', '-')}"
        group.add_argument(flag, dest=OPTION_PREFIX + f.name, default=argparse.SUPPRESS, type=_parser_for(f),
                           metavar=_metavar(f), help=_help(f))
    parser.studio_method_options = method


def _peek_method(args: list[str]) -> str:
    for i, arg in enumerate(args):
        if arg == "--method" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--method="):
            return arg.split("=", 1)[1]
    return DEFAULT_METHOD


def _parser_for(f: ConfigField):
    def parse(text: str) -> Any:
        try:
            return parse_value(f, text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None

    parse.__name__ = f.type.__name__
    return parse


def _metavar(f: ConfigField) -> str:
    if f.choices:
        return "{" + ",".join(map(str, f.choices)) + "}"
    return {bool: "BOOL", int: "N", float: "X", tuple: "N,N,..."}.get(f.type, "TEXT")


def _help(f: ConfigField) -> str:
    default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
    text = f"{f.help} (default: {default if default != '' else 'none'})"
    return text.replace("%", "%%")


class ThreadPolicy:
    """torch's CPU thread count: fixed, or ``auto``: as many as there are idle cores (at least one).

    torch's default, one thread per core, is right on an idle machine, but when other programs keep the cores busy
    its threads keep waiting for each other and a step can take ten times longer than on one thread. Under
    ``torchrun`` the processes on one machine share its cores (``share``: how many there are).
    """

    def __init__(self, spec: str, every: int = 100, share: int = 1) -> None:
        import torch

        self._torch = torch
        self.share = max(1, share)
        self.cores = max(1, (os.cpu_count() or 1) // self.share)
        self.auto = spec == "auto"
        self.every = every
        if not self.auto:
            try:
                count = int(spec)
            except ValueError:
                raise StudioError(f"--threads {spec!r}: give a whole number or auto") from None
            if count < 1:
                raise StudioError(f"--threads must be at least 1, got {count}")
            torch.set_num_threads(count)
        else:
            self.update(0)

    def update(self, step: int) -> None:
        if not self.auto or step % self.every:
            return
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average (Windows): keep torch's choice
            return
        ours = self._torch.get_num_threads() * self.share if step else 0  # the other ranks run as many as we do
        others = max(0.0, load - ours) / self.share
        wanted = max(1, min(self.cores, int(self.cores - others + 0.5)))
        if wanted != self._torch.get_num_threads():
            self._torch.set_num_threads(wanted)


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """The run's settings: explicit flags first, then (new run) the recipe or (--resume) the run's own steps and
    batch, then the method's defaults."""
    cls = get_method(args.method)
    explicit_options = {k[len(OPTION_PREFIX):]: v for k, v in vars(args).items() if k.startswith(OPTION_PREFIX)}
    explicit = {k: v for k, v in {"steps": args.steps, "batch": args.batch, "lr_decay": args.lr_decay,
                                  "budget_minutes": args.budget_minutes}.items() if v is not None}
    base: dict[str, Any] = dict(getattr(cls, "train_defaults", {}))
    options: dict[str, Any] = {}
    if args.resume:
        base.update(_stored_run_settings(args.out))
    else:
        # fine-tuning keeps the source model's network, which a recipe's options would change
        requested = "none" if args.init_from and args.recipe == "auto" else args.recipe
        recipe_name = choose_recipe(cls, requested, args.device)
        if recipe_name is not None:
            recipe = cls.recipes[recipe_name]
            base.update(recipe.settings)
            options.update(recipe.options)
            if distributed.is_main():
                print(f"recipe {recipe_name!r} for {cls.name}: {recipe.summary}. Options given here override it; "
                      "--recipe none trains with the method's defaults", file=sys.stderr)
    return TrainSettings(
        method=args.method, dataset=args.dataset, out=args.out, device=args.device, seed=args.seed,
        resume=args.resume, init_from=args.init_from, checkpoint_every=args.checkpoint_every,
        sample_every=args.sample_every, log_every=args.log_every, keep_checkpoints=args.keep_checkpoints,
        amp=not args.no_amp, test_fraction=args.test_fraction, minutes=args.minutes,
        method_options={**options, **explicit_options}, **{**base, **explicit})


def choose_recipe(cls: type, requested: str, device: str) -> str | None:
    """The recipe ``--recipe`` names: ``auto`` takes the method's "cpu" recipe when the run's device is the CPU."""
    from studio.training.model_io import pick_device

    if requested == "none":
        return None
    if requested == "auto":
        if "cpu" not in cls.recipes:
            return None
        try:
            return "cpu" if pick_device(device).type == "cpu" else None
        except StudioError:
            return None  # an absent --device is reported by the trainer, with its own message
    if requested not in cls.recipes:
        names = ", ".join(["auto", "none", *cls.recipes])
        raise StudioError(f"--recipe {requested!r}: {cls.name} has no such recipe; choose one of {names}")
    return requested


def _stored_run_settings(out: Path) -> dict[str, Any]:
    """Steps and batch recorded by the run in ``out`` (empty when there is none: the trainer then says so)."""
    try:
        stored = json.loads((Path(out) / "config.json").read_text()).get("settings") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: stored[k] for k in ("steps", "batch") if isinstance(stored.get(k), int)}


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    settings = settings_from_args(args)
    threads = ThreadPolicy(args.threads, share=distributed.local_world_size())
    bar: list[tqdm] = []

    def on_progress(event: ProgressEvent) -> None:
        threads.update(event.step)
        if not bar:
            bar.append(tqdm(total=event.total, initial=event.step - 1, unit="step", dynamic_ncols=True,
                            smoothing=0.05))
        bar[0].total = event.total  # a budgeted run's total is an estimate that follows the step rate
        bar[0].update(event.step - bar[0].n)
        bar[0].set_postfix(loss=f"{event.losses.get('loss', float('nan')):.4f}",
                           eta=f"{event.eta_s / 60:.1f}min", refresh=False)

    def on_log(message: str) -> None:
        if bar:
            bar[0].write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    trainer = Trainer(settings, TrainerCallbacks(on_progress=on_progress, on_log=on_log))
    try:
        result = trainer.run()
    finally:
        if bar:
            bar[0].close()
    if result.stopped:
        if not distributed.is_main():
            return 130
        print(f"stopped at step {result.step}; continue with the same command plus --resume", file=sys.stderr)
        return 130
    return 0
