"""What a run is given and what it hands back, as plain data: its settings (``TrainSettings``, declared once for
``studio train``'s flags and the Training tab's rows), the callbacks it calls, its progress and its result.

No torch: the service describes the settings to forms without loading the training loop (``studio.training.trainer``
runs them and re-exports these names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.methods.config import FormHints, option

if TYPE_CHECKING:
    import numpy as np

#: --lr-decay's schedules (see ``studio.training.schedule.lr_factor``)
LR_DECAYS = ("none", "cosine", "linear")


@dataclass
class TrainSettings:
    """Everything about a run that is not the method's own hyper-parameters (those go in ``method_options``).

    Declared once: each field's help, bounds and choices (``option``, as the method configs have) are what
    ``studio train`` renders as its flags (``studio.cli.train.RUN_FLAGS``), and with its ``FormHints`` (label, box,
    suffix, ...) what the Training tab renders as its rows, in this order. Help reads the same in both, so it names
    no flag.
    """

    method: str
    dataset: str
    out: Path
    steps: int = option(20000, "total optimisation steps of the run (default: the method's)", low=0,
                        form=FormHints("Steps", thousands=True))
    batch: int = option(8, "batch size: groups for gzs/deae, images otherwise (default: the method's); under "
                        "torchrun, per process: the global batch is N times the process count", low=1,
                        form=FormHints("Batch"))
    #: learning-rate schedule over ``steps``: constant (none), or cosine/linear decay to zero at the last step;
    #: None: a resumed run's own, a new run's "none"
    lr_decay: str | None = option(None, "learning-rate schedule over the run's steps (or its time budget): constant "
                                  "(none, the default), or cosine or linear decay to zero at the end (a short run "
                                  "ends sharper with one); a resumed run keeps its own", choices=LR_DECAYS,
                                  form=FormHints("LR schedule", kept_on_resume=True, choice_labels=(
                                      ("none", "constant"), ("cosine", "cosine decay to zero"),
                                      ("linear", "linear decay to zero"))))
    #: total training time of the run in minutes, summed over resumes: the run ends when it is spent (or at
    #: ``steps``, whichever comes first) and the schedule follows the nearer of the two, so a slow or busy machine
    #: still finishes its schedule; 0: no budget; None: a resumed run's own, a new run's 0
    budget_minutes: float | None = option(None, "total training time of the run in minutes, over all its resumes: "
                                          "it ends when they are spent (or at its last step), and the learning-rate "
                                          "schedule follows whichever of the two is nearer, so a slow or busy "
                                          "machine still finishes the schedule; 0: none; a resumed run keeps its "
                                          "own", low=0.0,
                                          form=FormHints("Time budget", suffix=" min", special="none", decimals=1,
                                                         step=5.0, kept_on_resume=True))
    device: str = option("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps",
                         form=FormHints("Device", offers=("auto", "cpu", "cuda", "mps"), remembered=False))
    seed: int = option(0, "seed for initial weights and batch sampling; the zero-shot split stays fixed", low=0,
                       form=FormHints("Seed"))
    resume: bool = option(False, "continue the run in --out exactly where it stopped")
    init_from: str | None = option(None, "fine-tune: start from these weights (same method and slots)")
    checkpoint_every: int = option(500, "steps between checkpoints; 0: only at the end", low=0,
                                   form=FormHints("Checkpoint every", "Saving"))
    sample_every: int = option(250, "steps between sample grids; 0: none", low=0,
                               form=FormHints("Samples every", "Saving"))
    log_every: int = option(25, "steps between the lines of metrics.jsonl, each the mean of the losses since the "
                            "last; 0: none", low=0, form=FormHints("Log every", "Saving"))
    keep_checkpoints: int = option(5, "numbered checkpoints to keep (checkpoints/last always stays)", low=0)
    amp: bool = option(True, "mixed precision on CUDA")
    test_fraction: float = option(0.25, "held-out share of attribute combinations", low=0.0, high=1.0)
    #: stop (and save) after this many minutes of this invocation's training loop; 0: no time limit
    minutes: float = option(0.0, "stop after M minutes of training, saving a checkpoint (--resume continues); 0: no "
                            "limit", low=0.0)
    method_options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainSettings:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["out"] = Path(kwargs["out"])
        return cls(**kwargs)


@dataclass
class ProgressEvent:
    step: int
    total: int
    losses: dict[str, float]
    steps_per_s: float
    eta_s: float


@dataclass
class TrainerCallbacks:
    """Optional hooks, all called from the training thread."""

    on_progress: Callable[[ProgressEvent], None] | None = None
    on_sample: Callable[[int, np.ndarray, Path], None] | None = None
    on_checkpoint: Callable[[int, Path], None] | None = None
    on_log: Callable[[str], None] | None = None


@dataclass
class TrainResult:
    step: int
    checkpoint: Path
    stopped: bool
    losses: dict[str, float]
    #: the numbered checkpoint of the final step, when the run keeps one (``checkpoint`` is the moving ``last``)
    kept: Path | None = None
    #: why a stopped run stopped: "time" (its ``minutes`` limit, a planned stop) or "interrupt" (Ctrl-C or
    #: ``request_stop``); "" for a run that reached its end (its steps or its budget)
    stop_reason: str = ""
