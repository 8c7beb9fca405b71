"""How well does a font completed from a few glyphs match the real font? (issue 16)

For fonts the model never saw (matplotlib's TTFs that its dataset left out, and the machine's own fonts that are
neither), rendered through ``fonts=DIR`` as a user's own TTFs would be: for each font and a few random
size/colour styles, render ``k`` random letters (k = 1, 3, 5; the letters nest, the styles repeat across k),
complete the alphabet from them with ``studio.service.font_completion`` and score the letters not given against
their true renders (PSNR). Baselines: the known font whose renders of the given letters are nearest to the
glyphs, as true renders ("nearest font, rendered") and as the model draws it ("nearest font, model").

    python benchmarks/font_completion.py models/fonts-gzs --styles 4 --figures docs/figures

Prints the machine, one row per k and per font, and a JSON line; writes figures when asked; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import format_table, machine, machine_lines
from studio.data.fonts import BUILTIN_FONTS, FontsDataset, builtin_font_dir
from studio.service import font_completion as fc
from studio.service.model_service import ModelService

SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")


def held_out_fonts(trained: set[str]) -> dict[str, Path]:
    """Latin-text TTFs from matplotlib and the system font folders whose names the model's dataset lacks."""
    found = {name: builtin_font_dir() / f"{name}.ttf" for name in BUILTIN_FONTS if name not in trained}
    for folder in SYSTEM_FONT_DIRS:
        if folder.is_dir():
            for path in sorted(folder.rglob("*.ttf")):
                if path.stem not in trained and path.stem not in found:
                    found[path.stem] = path
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", nargs="?", default="models/fonts-gzs")
    p.add_argument("--styles", type=int, default=4, help="random size/colour styles per font (default 4)")
    p.add_argument("--given", default="1,3,5", help="numbers of glyphs to complete from (default 1,3,5)")
    p.add_argument("--fonts", default="", help="comma-separated held-out font names (default: all found)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figures", type=Path, default=None, help="write example figures into this folder")
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--judge", action="store_true",
                   help="also read the letters with issue 14's judge (studio.evaluation.judge), when it is there")
    args = p.parse_args()

    for line in machine_lines(machine()):
        print(line)
    service = ModelService(device="cpu", cache_dir=args.cache_dir)
    try:
        model = service.load_checkpoint(args.checkpoint)
        dataset = service.dataset
        trained = set(dataset.schema["font"].values)
        candidates = held_out_fonts(trained)
        names = [n.strip() for n in args.fonts.split(",") if n.strip()] or sorted(candidates)
        preset = dataset.spec.split(",")[0].partition(":")[2] or "small"
        with tempfile.TemporaryDirectory() as tmp:
            for name in names:
                shutil.copy(candidates[name], Path(tmp) / f"{name}.ttf")
            truth = FontsDataset(preset, model.resolution, tmp)
            print(f"model    {model.title} on {dataset.spec}; {len(names)} held-out fonts: {', '.join(names)}")
            results = {}
            for k in (int(v) for v in args.given.split(",")):
                start = time.perf_counter()
                cases = fc.measure_completion(service, truth, names, given=k, styles=args.styles, seed=args.seed)
                results[k] = cases
                print(f"\n{k} glyph(s): {len(cases)} cases in {time.perf_counter() - start:.0f} s")
                rows = []
                for name in names:
                    mine = [c for c in cases if c.font == name]
                    rows.append([name, f"{np.mean([c.completed_psnr for c in mine]):.2f}",
                                 f"{np.mean([c.nearest_render_psnr for c in mine]):.2f}",
                                 f"{np.mean([c.nearest_model_psnr for c in mine]):.2f}",
                                 ", ".join(sorted({c.nearest_font for c in mine}))])
                rows.append(["mean", f"{np.mean([c.completed_psnr for c in cases]):.2f}",
                             f"{np.mean([c.nearest_render_psnr for c in cases]):.2f}",
                             f"{np.mean([c.nearest_model_psnr for c in cases]):.2f}", ""])
                print(format_table(["held-out font", "completed dB", "nearest font, rendered dB",
                                    "nearest font, model dB", "nearest known font"], rows))
            summary = {str(k): {"cases": len(c),
                                "completed_psnr": float(np.mean([x.completed_psnr for x in c])),
                                "nearest_render_psnr": float(np.mean([x.nearest_render_psnr for x in c])),
                                "nearest_model_psnr": float(np.mean([x.nearest_model_psnr for x in c])),
                                "completed_beats_nearest_render": float(np.mean(
                                    [x.completed_psnr > x.nearest_render_psnr for x in c]))}
                       for k, c in results.items()}
            print(json.dumps({"benchmark": "font_completion", "checkpoint": str(args.checkpoint),
                              "fonts": names, "styles": args.styles, "seed": args.seed, "results": summary}))
            if args.judge:
                judge_letters(service, results)
            if args.figures is not None:
                write_figures(service, truth, results, args.figures)
    finally:
        service.shutdown()
    return 0


def judge_letters(service: ModelService, results: dict) -> None:
    """Letter accuracy, as the judge (trained on the model's training images only) reads it: completed letters,
    the held-out font's true renders (what the judge can read in an unseen font at all) and the nearest known
    font as the model draws it."""
    try:
        from studio.evaluation.judge import load_or_train_judge
    except ImportError as e:
        print(f"judge    not available ({e})")
        return
    from studio.data.splits import ZeroShotSplit
    from studio.training.data import to_tensor

    dataset = service.dataset
    start = time.perf_counter()
    judge, cached = load_or_train_judge(dataset, ZeroShotSplit.make(dataset.codes, 0.25, 0).train)
    print(f"\njudge    {'from the cache' if cached else f'trained in {time.perf_counter() - start:.0f} s'}")
    letters = dataset.schema["letter"]
    rows, summary = [], {}
    for k, cases in results.items():
        want = np.array([letters.index(c) for case in cases for c in case.letters])
        read = {}
        for what in ("completed", "truth"):
            images = np.stack([img for case in cases for img in getattr(case, what)])
            read[what] = float((judge.predict(to_tensor(images, "cpu"))[:, 0].numpy() == want).mean())
        rows.append([k, f"{read['completed']:.3f}", f"{read['truth']:.3f}", len(want)])
        summary[str(k)] = read
    print(format_table(["glyphs given", "judge letter accuracy, completed", "on the true renders", "letters"],
                       rows))
    print(json.dumps({"benchmark": "font_completion_judge", "results": summary}))


def write_figures(service: ModelService, truth: FontsDataset, results: dict, folder: Path) -> None:
    """Per shown case: given glyphs | completed letters | true renders | nearest known font (rendered)."""
    folder.mkdir(parents=True, exist_ok=True)
    k = max(results)
    shown = {}
    for case in results[k]:
        shown.setdefault(case.font, case)
    rows = []
    s = truth.schema
    for case in list(shown.values())[:4]:
        def render(letter: str, font: str, case=case) -> np.ndarray:
            values = {"letter": letter, **case.style, "font": font}
            return truth.render_values([s[n].index(values[n]) for n in s.names])

        given = [render(c, case.font) for c in case.given]
        nearest = [render(c, case.nearest_font) for c in case.letters]
        blank = np.full_like(given[0], 255)
        pad = [blank] * (len(case.letters) - len(given))
        rows.append(fc.sheet_grid([*given, *pad], len(case.letters)))
        rows.append(fc.sheet_grid(list(case.completed), len(case.letters)))
        rows.append(fc.sheet_grid(list(case.truth), len(case.letters)))
        rows.append(fc.sheet_grid(nearest, len(case.letters)))
        rows.append(np.full((8, rows[-1].shape[1], 3), 255, np.uint8))
    Image.fromarray(np.concatenate(rows[:-1])).save(folder / f"font_completion_{k}_glyphs.png")
    print(f"wrote    {folder / f'font_completion_{k}_glyphs.png'} (per font: given | completed | true | nearest)")


if __name__ == "__main__":
    raise SystemExit(main())
