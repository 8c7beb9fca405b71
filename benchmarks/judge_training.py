"""CPU time of training the judge (studio/evaluation/judge.py) on a dataset's training split, one thread.

The judge is trained once per dataset and cached; this says what that first time costs. It times ``--steps``
steps, extrapolates to the judge's default step count for the dataset (``judge.default_steps``), and reports
the accuracy of the judge it trained on the held-out (zero-shot test) images.

    taskset -c 0 .venv/bin/python benchmarks/judge_training.py [--dataset fonts:small] [--steps 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.data.spec import open_dataset
from studio.data.splits import ZeroShotSplit
from studio.evaluation import judge
from studio.training.data import to_tensor


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fonts:small")
    p.add_argument("--steps", type=int, default=50, help="steps to time (default 50)")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = open_dataset(args.dataset)
    split = ZeroShotSplit.make(data.codes, 0.25, 0)
    items = judge.judge_items(split.train)
    images, labels = data.images(items), data.codes[items]
    began = time.process_time()
    model = judge.train_judge(images, labels, data.schema.cardinalities, steps=args.steps)
    seconds = time.process_time() - began
    result = {"dataset": data.spec, "train_items": len(items), "steps_timed": args.steps,
              "cpu_seconds": round(seconds, 1),
              "cpu_seconds_per_step": round(seconds / args.steps, 3),
              "default_steps": judge.default_steps(data.schema.cardinalities),
              "cpu_minutes_at_default_steps": round(seconds / args.steps
                                                    * judge.default_steps(data.schema.cardinalities) / 60, 2)}
    test = split.test
    predicted = model.predict(to_tensor(data.images(test)))
    truth = torch.from_numpy(data.codes[test].astype(np.int64))
    result["heldout_accuracy"] = dict(zip(data.schema.names,
                                          [round(a, 3) for a in (predicted == truth).float().mean(0).tolist()]))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
