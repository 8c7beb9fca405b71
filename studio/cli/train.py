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
from studio.training.trainer import ProgressEvent, Trainer, TrainerCallbacks, TrainSettings

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
    add_run_settings(parser)
    parser.add_argument("--recipe", default="auto", metavar="NAME",
                        help="a measured set of settings and method options that fills in every value this command "
                             "leaves unset: auto (the method's 'cpu' recipe when training on a CPU, else none), "
                             "none, or a recipe's name (`--method NAME --help` lists the method's); not used with "
                             "--resume, which keeps the run's own, nor by auto with --init-from")
    parser.add_argument("--threads", default="auto", metavar="N",
                        help="CPU threads for torch, or auto: one per idle core, re-checked as training goes (on a "
                             "busy CPU, threads that wait for each other are many times slower than one thread)")
    parser.set_defaults(run=run)


#: The run settings ``studio train`` offers, with their metavars: the flag, help, default, bounds and choices come
#: from the TrainSettings field (a boolean that is on by default becomes ``--no-NAME``).
RUN_FLAGS: dict[str, str] = {
    "steps": "N", "batch": "N", "device": "DEVICE", "minutes": "M", "lr_decay": "", "budget_minutes": "M",
    "seed": "N", "resume": "", "init_from": "CHECKPOINT", "checkpoint_every": "N", "sample_every": "N",
    "log_every": "N", "keep_checkpoints": "N", "amp": "", "test_fraction": "X",
}
#: left unset (None) unless given: then the recipe, the resumed run or the method's ``train_defaults`` decide
UNSET_UNLESS_GIVEN = ("steps", "batch", "lr_decay", "budget_minutes")


def add_run_settings(parser: argparse.ArgumentParser) -> None:
    fields = {f.name: f for f in config_fields(TrainSettings)}
    for name, metavar in RUN_FLAGS.items():
        f, flag = fields[name], "--" + name.replace("_", "-")
        if f.type is bool:
            if f.default:
                parser.add_argument(f"--no-{name.replace('_', '-')}", dest=name, action="store_false",
                                    help=f"no {f.help}")
            else:
                parser.add_argument(flag, dest=name, action="store_true", help=f.help)
            continue
        unset = name in UNSET_UNLESS_GIVEN
        parser.add_argument(flag, dest=name, type=_parser_for(f), default=None if unset else f.default,
                            metavar=metavar or _metavar(f), help=(f.help if unset or f.default is None
                                                                  else _help(f)).replace("%", "%%"))


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
    explicit = {k: getattr(args, k) for k in UNSET_UNLESS_GIVEN if getattr(args, k) is not None}
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
    given = {k: getattr(args, k) for k in RUN_FLAGS if k not in UNSET_UNLESS_GIVEN}
    return TrainSettings(method=args.method, dataset=args.dataset, out=args.out, **given,
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
        # --minutes is a planned stop (exit 0, like a spent --budget-minutes); Ctrl-C keeps the shell's 130
        planned = result.stop_reason == "time"
        if distributed.is_main():
            why = f"by the --minutes {args.minutes:g} limit" if planned else "(interrupted)"
            print(f"stopped at step {result.step} {why}; continue with the same command plus --resume",
                  file=sys.stderr)
        return 0 if planned else 130
    return 0
