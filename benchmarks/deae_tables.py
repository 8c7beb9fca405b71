"""The shape of paper 003's Tables 1 and 2 on Fonts, scaled down to run on a CPU.

Table 1 (augmentation): a letter classifier trained on a small Fonts subset D_S (fewer sizes, colours and fonts)
is tested on items with other sizes, colours and fonts; then D_S is enlarged with images that GZS-Net or DEAE,
each trained on D_S only, synthesise by interpolating a non-letter attribute between two D_S items. A larger
training set D_L shows the ceiling.

Table 2 (bias): in the biased set D_B, letters of group G1 appear on one background colour each, G2 letters on
three, G3 letters on all. An image classifier trained on D_B leans on the background; one trained on an unbiased
set of the same size does not. DEAE, trained on D_B, encodes every image; a classifier on its latents without the
background-colour slot cannot use the background at all.

Scaled down from the paper (say so when quoting): 32 px Fonts (preset ``small``: 10 letters, 3 sizes, 5 colours,
10 fonts), a four-layer CNN instead of ResNet-18, short autoencoder runs (``--steps``), 1000 synthesised images as
in the paper. Everything trains on the CPU: with ``--seeds 1`` Table 1 took 21 min and Table 2 9 min on a
2-core machine shared with other work (each process got about 40% of a core). Runs are kept in ``--work-dir``
and reused when the script is run again. At 800 steps the autoencoders render colours but not yet letter shapes,
so the synthesised images and DEAE's letter slot carry little letter information; raise ``--steps`` where time
allows.

    .venv/bin/python benchmarks/deae_tables.py [--work-dir /tmp/deae_tables] [--steps 800] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.cli.augment import Synthesised, synthesise_interpolated, training_items, write_folder
from studio.data.dataset import AttributedDataset
from studio.data.spec import open_dataset
from studio.evaluation.deae_eval import train_classifier
from studio.evaluation.suite import text_table
from studio.training.data import to_tensor
from studio.training.model_io import load_model
from studio.training.trainer import Trainer, TrainSettings

SPEC = "fonts:small,res=32"
NON_LETTER = ["size", "font_color", "background_color", "font"]


# --- data ---------------------------------------------------------------------------------------------------
def select(dataset: AttributedDataset, **allowed: list[str]) -> np.ndarray:
    """Items whose values of each named attribute are among ``allowed``."""
    keep = np.ones(len(dataset), dtype=bool)
    for name, values in allowed.items():
        attribute = dataset.schema[name]
        codes = [attribute.index(v) for v in values]
        keep &= np.isin(dataset.codes[:, dataset.schema.position(name)], codes)
    return np.flatnonzero(keep)


def as_folder(dataset: AttributedDataset, items: np.ndarray, out: Path) -> Path:
    """Write ``items`` as a folder dataset (once), so the trainer can train on exactly them."""
    if (out / "attributes.csv").exists():
        return out
    labels = [dataset.values(int(i)) for i in items]
    write_folder(out, Synthesised(dataset.images(items), labels, []), dataset.schema.names)
    return out


def train(method: str, folder: Path, out: Path, args: argparse.Namespace) -> Path:
    """A short GZS-Net or DEAE run on a folder; reused when it already finished."""
    if (out / "checkpoints" / "last.json").exists() and load_model(out).step >= args.steps:
        return out
    options = {"width": 16, "hidden": 256, "residual_blocks": 1}
    settings = TrainSettings(method=method, dataset=str(folder), out=out, steps=args.steps, batch=args.batch,
                             device="cpu", seed=args.seed, resume=(out / "checkpoints" / "last.json").exists(),
                             checkpoint_every=max(1, args.steps // 2), sample_every=0, test_fraction=0.05,
                             method_options=options)
    began = time.perf_counter()
    Trainer(settings).run()
    print(f"  trained {method} on {folder.name}: {args.steps} steps in {(time.perf_counter() - began) / 60:.1f} min",
          file=sys.stderr)
    return out


def synthesise(run: Path, count: int, seed: int) -> Synthesised:
    """``count`` images: one non-letter attribute interpolated between two of the run's training items."""
    from studio.service.model_service import ModelService

    service = ModelService(device="cpu", cache_dir=run / "service-cache")
    try:
        service.load_checkpoint(run)
        train = training_items(run, service.dataset)
        return synthesise_interpolated(service, train, count, np.random.default_rng(seed), NON_LETTER)
    finally:
        service.shutdown()


def letter_codes(labels: list[str], letters: tuple[str, ...]) -> np.ndarray:
    return np.array([letters.index(v) for v in labels], dtype=np.int64)[:, None]


def letter_accuracy(images: np.ndarray, labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray,
                    classes: int, args: argparse.Namespace) -> tuple[float, float]:
    """Mean (train, test) accuracy over ``args.seeds`` classifier seeds."""
    train_acc, test_acc = [], []
    for seed in range(args.seeds):
        model = train_classifier(images, labels, [classes], steps=args.classifier_steps, seed=seed,
                                 augment_shift=2)
        for imgs, labs, out in ((images, labels, train_acc), (test_images, test_labels, test_acc)):
            predicted = model.predict(to_tensor(imgs))[:, 0].numpy()
            out.append(float((predicted == labs[:, 0]).mean()))
    return float(np.mean(train_acc)), float(np.mean(test_acc))


# --- Table 1 ------------------------------------------------------------------------------------------------
def table1(fonts: AttributedDataset, args: argparse.Namespace, work: Path) -> tuple[str, dict[str, Any]]:
    schema = fonts.schema
    letters = schema["letter"].values
    small = select(fonts, size=["small", "large"], font_color=["red", "green", "blue"],
                   background_color=["red", "green", "blue"], font=list(schema["font"].values[:3]))
    rng = np.random.default_rng(args.seed)
    rest = np.setdiff1d(np.arange(len(fonts)), small)
    test = np.sort(rng.choice(rest, size=min(args.test_items, len(rest)), replace=False))
    large_pool = np.setdiff1d(rest, test)
    large = np.sort(rng.choice(large_pool, size=min(len(large_pool), 15 * len(small)), replace=False))
    folder = as_folder(fonts, small, work / "D_S")
    test_images, test_labels = fonts.images(test), fonts.codes[test, :1].astype(np.int64)

    sets: dict[str, tuple[np.ndarray, np.ndarray, str]] = {
        "D_L": (fonts.images(large), fonts.codes[large, :1].astype(np.int64), "larger set, all values"),
        "D_S": (fonts.images(small), fonts.codes[small, :1].astype(np.int64), "2 sizes, 3+3 colours, 3 fonts"),
    }
    for method in ("gzs", "deae"):
        run = train(method, folder, work / f"{method}-D_S", args)
        synth = synthesise(run, args.synthesised, args.seed)
        images = np.concatenate([sets["D_S"][0], synth.images])
        labels = np.concatenate([sets["D_S"][1], letter_codes([lb["letter"] for lb in synth.labels], letters)])
        sets[f"D_S+{method.upper()}"] = (images, labels, f"+{len(synth.images)} interpolated by {method}")
    rows, result = [], {}
    for name, (images, labels, note) in sets.items():
        train_acc, test_acc = letter_accuracy(images, labels, test_images, test_labels, len(letters), args)
        rows.append([name, len(images), train_acc, test_acc, note])
        result[name] = {"size": len(images), "train_accuracy": train_acc, "test_accuracy": test_acc}
    table = text_table(["training set", "images", "train acc", "test acc", ""], rows, digits=3)
    paper = "paper 003 Table 1 (ResNet-18, 128 px): D_L 94%, D_S 71%, D_S+GSL-AE 74%, D_S+DEAE 76% test accuracy"
    return f"{table}\ntest: {len(test)} items with other sizes, colours and fonts\n{paper}", result


# --- Table 2 ------------------------------------------------------------------------------------------------
def biased_items(fonts: AttributedDataset, pool: np.ndarray) -> tuple[np.ndarray, dict[str, list[str]]]:
    """G1 letters on one background colour each, G2 on three, G3 on all."""
    schema = fonts.schema
    letters, colours = schema["letter"].values, schema["background_color"].values
    groups = {"G1": list(letters[:4]), "G2": list(letters[4:7]), "G3": list(letters[7:])}
    allowed: dict[str, list[str]] = {}
    for k, letter in enumerate(groups["G1"]):
        allowed[letter] = [colours[k % len(colours)]]
    for k, letter in enumerate(groups["G2"]):
        allowed[letter] = [colours[(k + j) % len(colours)] for j in range(3)]
    for letter in groups["G3"]:
        allowed[letter] = list(colours)
    li, bi = schema.position("letter"), schema.position("background_color")
    keep = [i for i in pool if colours[fonts.codes[i, bi]] in allowed[letters[fonts.codes[i, li]]]]
    return np.array(keep, dtype=np.int64), groups


@torch.no_grad()
def encode(run: Path, fonts: AttributedDataset, items: np.ndarray) -> dict[str, np.ndarray]:
    method = load_model(run).method
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(items), 256):
        for name, value in method.encode(to_tensor(fonts.images(items[start:start + 256]))).items():
            parts.setdefault(name, []).append(value.float().numpy())
    return {name: np.concatenate(v) for name, v in parts.items()}


def latent_classifier(train: dict[str, np.ndarray], y: np.ndarray, slots: list[str], seed: int):
    """An MLP on the chosen slots' latents; returns a function from latents to predicted letters."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([train[s] for s in slots], axis=1)
    scaler = StandardScaler().fit(x)
    clf = MLPClassifier((128,), max_iter=400, random_state=seed).fit(scaler.transform(x), y)
    return lambda z: clf.predict(scaler.transform(np.concatenate([z[s] for s in slots], axis=1)))


def table2(fonts: AttributedDataset, args: argparse.Namespace, work: Path) -> tuple[str, dict[str, Any]]:
    rng = np.random.default_rng(args.seed + 1)
    perm = rng.permutation(len(fonts))
    pool, held = np.sort(perm[: len(perm) // 2]), np.sort(perm[len(perm) // 2:])
    biased, groups = biased_items(fonts, pool)
    unbiased = np.sort(rng.choice(pool, size=len(biased), replace=False))
    test = np.sort(rng.choice(held, size=min(args.test_items, len(held)), replace=False))
    letters = fonts.schema["letter"].values
    y_test = fonts.codes[test, 0].astype(np.int64)
    group_of = {letter: g for g, members in groups.items() for letter in members}
    test_groups = np.array([group_of[letters[c]] for c in y_test])

    predictions: dict[str, np.ndarray] = {}
    train_acc: dict[str, float] = {}
    for name, items in (("image, biased", biased), ("image, unbiased", unbiased)):
        model = train_classifier(fonts.images(items), fonts.codes[items, :1], [len(letters)],
                                 steps=args.classifier_steps, seed=args.seed, augment_shift=2)
        predictions[name] = model.predict(to_tensor(fonts.images(test)))[:, 0].numpy()
        train_acc[name] = float((model.predict(to_tensor(fonts.images(items)))[:, 0].numpy()
                                 == fonts.codes[items, 0]).mean())
    run = train("deae", as_folder(fonts, biased, work / "D_B"), work / "deae-D_B", args)
    slots = [s.name for s in load_model(run).method.slots]
    z_train, z_test = encode(run, fonts, biased), encode(run, fonts, test)
    y_train = fonts.codes[biased, 0].astype(np.int64)
    for name, chosen in (("DEAE latent, all slots", slots),
                         ("DEAE latent, no background", [s for s in slots if s != "background_color"])):
        predict = latent_classifier(z_train, y_train, chosen, args.seed)
        predictions[name] = predict(z_test)
        train_acc[name] = float((predict(z_train) == y_train).mean())
    header = ["test letters", *predictions]
    rows, result = [], {}
    for g in ("G1", "G2", "G3"):
        mask = test_groups == g
        accs = [float((p[mask] == y_test[mask]).mean()) for p in predictions.values()]
        rows.append([f"{g} ({len(groups[g])} letters)", *accs])
        result[g] = dict(zip(predictions, accs))
    overall = [float((p == y_test).mean()) for p in predictions.values()]
    rows.append(["all", *overall])
    rows.append(["train", *train_acc.values()])
    result["all"] = dict(zip(predictions, overall))
    result["train"] = train_acc
    colours = "; ".join(f"{g}: {1 if g == 'G1' else 3 if g == 'G2' else 5} background colour(s) per letter"
                        for g in groups)
    paper = "paper 003 Table 2 (test): resnet18-bias 81%, resnet18-unbias 99%, DEAE-bias 98%"
    table = text_table(header, rows, digits=3)
    return (f"{table}\nD_B: {len(biased)} images ({colours}); unbiased set: {len(unbiased)}; test: {len(test)} "
            f"unbiased images\n{paper}"), result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/deae_tables"), help="runs and subsets go here")
    p.add_argument("--steps", type=int, default=800, help="training steps of each autoencoder (default 800)")
    p.add_argument("--batch", type=int, default=4, help="groups per autoencoder step (default 4)")
    p.add_argument("--synthesised", type=int, default=1000, help="images added to D_S (paper: 1000)")
    p.add_argument("--classifier-steps", type=int, default=500, help="letter classifier steps (default 500)")
    p.add_argument("--seeds", type=int, default=2, help="classifier seeds averaged in Table 1 (default 2)")
    p.add_argument("--test-items", type=int, default=1000, help="test images per table (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=("1", "2"), help="run one table")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    fonts = open_dataset(SPEC)
    fonts.materialize()
    work = args.work_dir.expanduser()
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"settings": {k: str(v) for k, v in vars(args).items()}}
    began = time.perf_counter()
    if args.only in (None, "1"):
        text, figures["table1"] = table1(fonts, args, work)
        print("== Table 1: augmenting a small training set (letter classification)\n" + text + "\n", flush=True)
    if args.only in (None, "2"):
        text, figures["table2"] = table2(fonts, args, work)
        print("== Table 2: removing a letter/background bias (letter classification)\n" + text + "\n", flush=True)
    print(f"({(time.perf_counter() - began) / 60:.1f} min in all)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
