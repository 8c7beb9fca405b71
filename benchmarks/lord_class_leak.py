"""Why do LORD's stage-1 content codes hold the class on one dataset and not on another? (issue 18)

Trains LORD's stage 1 (latent optimisation, the ``cpu`` recipe's settings) on a dataset and, at a few steps,
measures on the content codes of the training items:

- ``probe``: the class predicted from the content code by the project's MLP probe (and a linear one), fitted on a
  random 80% of the training items and scored on the other 20%, next to the majority share of the scored items;
- the codes' spectrum: variance in each principal direction against the content noise (std ``content_noise``),
  how many directions pass the denoise gains 0.02 / 0.05, and the share of the variance in the top ones;
- ``class share``: in each principal direction, the fraction of its variance explained by the class means (eta^2),
  summed over directions weighted by variance: how much of the code *is* the class.

``--dataset digits`` writes scikit-learn's bundled digits (no download) as 32-px PNGs with the digit as the only
attribute (``DIR/digits``) and trains on that folder. Prints one JSON line per measurement; asserts nothing.
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
from studio.evaluation.coprediction import probe_accuracy
from studio.methods.base import MethodContext, StepContext
from studio.methods.lord import Lord
from studio.training.data import TrainingData
from studio.training.trainer import build_config


def write_digits(folder: Path, resolution: int = 32) -> Path:
    """scikit-learn's 8x8 digits as ``resolution``-px grey PNGs (dark ink on white) with ``digit`` labels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    if (folder / "attributes.csv").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    lines = ["file,digit"]
    for i, (pixels, label) in enumerate(zip(digits.images, digits.target)):
        grey = (255 - pixels * (255 / 16)).clip(0, 255).astype(np.uint8)
        Image.fromarray(grey).resize((resolution, resolution), Image.Resampling.BILINEAR).save(folder / f"{i}.png")
        lines.append(f"{i}.png,{label}")
    (folder / "attributes.csv").write_text("\n".join(lines) + "\n")
    return folder


def style_features(images: np.ndarray) -> np.ndarray:
    """Four things about how a character is drawn, not which one it is: ink (stroke weight), width and height of
    its bounding box, and slant (the ink's x-y correlation). ``images``: (N, H, W) ink in [0, 1]."""
    n, h, w = images.shape
    ys, xs = np.mgrid[0:h, 0:w]
    out = np.zeros((n, 4))
    for i, img in enumerate(images):
        ink = img.sum()
        cols, rows = np.flatnonzero(img.max(axis=0) > 0.25), np.flatnonzero(img.max(axis=1) > 0.25)
        mx, my = (img * xs).sum() / ink, (img * ys).sum() / ink
        cov = (img * (xs - mx) * (ys - my)).sum() / ink
        sx, sy = np.sqrt((img * (xs - mx) ** 2).sum() / ink), np.sqrt((img * (ys - my) ** 2).sum() / ink)
        out[i] = [ink, np.ptp(cols) + 1 if len(cols) else 0, np.ptp(rows) + 1 if len(rows) else 0, cov / (sx * sy)]
    return out


def style_probe(seed: int = 0) -> dict:
    """How well the drawing style alone (``style_features``) tells the digit: a probe on data, no model."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = style_features(digits.images / 16.0)
    y = digits.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    cut = int(0.8 * len(y))
    fit, score = np.sort(perm[:cut]), np.sort(perm[cut:])
    xt = torch.from_numpy((x - x[fit].mean(0)) / np.maximum(x[fit].std(0), 1e-6)).float()
    t = torch.from_numpy(y)
    mlp = float(probe_accuracy(xt[fit][None], t[fit][:, None], xt[score][None], t[score][:, None], [10],
                               seed=seed)[0, 0])
    return {"style_features": "ink, width, height, slant", "mlp_probe": round(mlp, 3),
            "linear_probe": round(linear_probe(x, y, fit, score), 3),
            "majority": round(float(np.bincount(y[score]).max() / len(score)), 3)}


def linear_probe(x: np.ndarray, y: np.ndarray, fit: np.ndarray, score: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x[fit])
    model = LogisticRegression(max_iter=2000).fit(scaler.transform(x[fit]), y[fit])
    return float(model.score(scaler.transform(x[score]), y[score]))


def measure(codes: np.ndarray, y: np.ndarray, noise: float, seed: int = 0) -> dict:
    """Probes and spectrum of one set of content codes (rows: training items) with their classes ``y``."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(codes))
    cut = int(0.8 * len(codes))
    fit, score = np.sort(perm[:cut]), np.sort(perm[cut:])
    classes = int(y.max()) + 1
    t = torch.from_numpy(y.astype(np.int64))

    def mlp(features: np.ndarray) -> float:
        x = torch.from_numpy(features).float()
        return round(float(probe_accuracy(x[fit][None], t[fit][:, None], x[score][None], t[score][:, None],
                                          [classes], seed=seed)[0, 0]), 3)

    centred = codes - codes.mean(axis=0)
    variances, directions = np.linalg.eigh(np.cov(centred, rowvar=False))
    order = np.argsort(variances)[::-1]
    variances, directions = np.clip(variances[order], 0, None), directions[:, order]
    gain = variances / (variances + noise**2)
    kept = gain >= 0.02
    # what stage 2's denoised target keeps: each direction shrunk by its gain, the faint ones dropped
    denoised = (centred @ directions) * np.where(kept, gain, 0.0)
    # the same without the class means: what is left of the class once the codes are centred per class
    centred_per_class = denoised.copy()
    for c in np.unique(y):
        centred_per_class[y == c] -= centred_per_class[y == c].mean(axis=0)
    # what reaches the generator in stage 1: the code plus one draw of its noise
    noisy = codes + noise * np.random.default_rng(seed + 1).standard_normal(codes.shape)
    projected = centred @ directions
    means = np.zeros((classes, projected.shape[1]))
    for c in np.unique(y):
        means[c] = projected[y == c].mean(axis=0)
    between = np.array([np.mean(means[y, k] ** 2) for k in range(projected.shape[1])])
    eta2 = between / np.maximum(variances, 1e-12)
    top = variances / variances.sum()
    return {
        "mlp_probe": mlp(codes),
        "mlp_probe_noisy": mlp(noisy),
        "mlp_probe_denoised": mlp(denoised) if kept.any() else None,
        "mlp_probe_denoised_class_centred": mlp(centred_per_class) if kept.any() else None,
        "mlp_probe_top8": mlp(centred @ directions[:, :8]),
        "mlp_probe_below_top8": mlp(centred @ directions[:, 8:]),
        "linear_probe": round(linear_probe(codes, y, fit, score), 3),
        "majority": round(float(np.bincount(y[score]).max() / len(score)), 3),
        "classes_in_train": len(np.unique(y)),
        "items_per_class": int(np.median(np.bincount(y)[np.bincount(y) > 0])),
        "code_rms": round(float(np.sqrt((codes**2).sum(axis=1).mean())), 3),
        "top_variances": [round(float(v), 4) for v in variances[:8]],
        "top5_share": round(float(top[:5].sum()), 3),
        "dirs_gain_0.02": int((gain >= 0.02).sum()),
        "dirs_gain_0.05": int((gain >= 0.05).sum()),
        "eta2_top8": [round(float(e), 2) for e in eta2[:8]],
        "class_share": round(float((eta2 * variances).sum() / variances.sum()), 3),
        "class_share_above_0.02": round(float((eta2 * variances)[gain >= 0.02].sum()
                                              / max(1e-12, variances[gain >= 0.02].sum())), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits", help="digits, or any dataset spec (e.g. fonts:small,res=32)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/lord_leak"), help="where the digits folder goes")
    parser.add_argument("--steps", type=int, default=1400, help="stage-1 steps (the cpu recipe: 1400)")
    parser.add_argument("--measure-at", default="200,700,1400", help="steps at which to measure")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a LORD option, e.g. content_noise=2 (repeatable)")
    parser.add_argument("--res", type=int, default=None, help="load the images at this resolution (res=N)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--style-probe", action="store_true",
                        help="the digit from four style statistics of the digits images alone (no training)")
    parser.add_argument("--analyse", type=Path, default=None, metavar="NPZ",
                        help="measure the codes saved by --save-codes instead of training")
    parser.add_argument("--save-codes", type=Path, default=None, metavar="DIR",
                        help="also write each measured step's content codes and classes to DIR/codes-STEP.npz")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.style_probe:
        print(json.dumps(style_probe(args.seed)))
        return
    if args.analyse is not None:
        saved = np.load(args.analyse)
        noise = float(dict(o.split("=", 1) for o in args.option).get("content_noise", 1.0))
        print(json.dumps({"codes": str(args.analyse), **measure(saved["codes"], saved["y"], noise, args.seed)}))
        return
    spec = str(write_digits(args.dir / "digits")) if args.dataset == "digits" else args.dataset
    if args.res is not None:
        spec += f",res={args.res}"
    dataset = open_dataset(spec)
    split = ZeroShotSplit.make(dataset.codes, 0.25, 0)
    data = TrainingData(dataset, split, "cpu")
    options = {"stage1_steps": args.steps, "stage2_steps": 800, "content_target": "denoised",
               "content_recon": False, "class_recon": False}
    options.update(dict(o.split("=", 1) for o in args.option))
    config = build_config(Lord, options)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    lord = Lord(config, MethodContext(dataset.schema, dataset.resolution, len(split.train)))
    lord.train()
    optimizers = lord.make_optimizers()
    ctx = StepContext(torch.device("cpu"))
    y = dataset.codes[split.train, lord.class_position].astype(np.int64)
    marks = {int(s) for s in args.measure_at.split(",")}
    started = time.perf_counter()
    print(json.dumps({"dataset": spec, "options": options, "train_items": len(split.train),
                      "test_items": len(split.test)}), flush=True)
    for step in range(args.steps):
        batch = lord.sample_batch(data, rng, args.batch)
        losses = lord.training_step(batch, optimizers, step, ctx)
        if step + 1 in marks:
            codes = lord.content_codes.weight.detach().numpy().astype(np.float64)
            report = {"step": step + 1, "minutes": round((time.perf_counter() - started) / 60, 2),
                      "updates_per_item": round((step + 1) * args.batch / len(split.train), 1),
                      "recon": round(losses["recon"], 4), **measure(codes, y, config.content_noise, args.seed)}
            if args.save_codes is not None:
                args.save_codes.mkdir(parents=True, exist_ok=True)
                np.savez(args.save_codes / f"codes-{step + 1}.npz", codes=codes, y=y)
            print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
