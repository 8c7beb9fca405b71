"""Do slider paths stay on the data? Straight A->B lines against the service's on-data path (``follow_data``).

For pairs of training items (issue 17's yellow 1695 -> blue 4192 in ``background_color`` first, then random pairs
in every slot) it composes the frames of one slot's interpolation, exactly as the slot slider, the global
slider and the exported strips do, and scores each frame by its pixel RMSE to the nearest real image of the
dataset (pixels in [0, 1]): a frame the data could have shown scores like a reconstruction, colour noise scores
far worse. Also the frame's slot latent's distance to the nearest training latent, in typical spacings.

Run: ``.venv/bin/python benchmarks/interpolation_on_data.py [--checkpoint models/fonts-gzs/model.safetensors]
[--pairs 4] [--frames 11] [--threads 1] [--strip out.png] [--json out.json]``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import _common as common
import numpy as np


def nearest_rmse(frames: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Per frame: RMSE to the nearest of ``real`` (both uint8 (n, H, W, 3))."""
    f = frames.reshape(len(frames), -1).astype(np.float32) / 255.0
    r = real.reshape(len(real), -1).astype(np.float32) / 255.0
    d2 = (f * f).sum(1)[:, None] - 2.0 * f @ r.T + (r * r).sum(1)[None, :]
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0) / f.shape[1])


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], checkpoint=False)
    p.add_argument("--checkpoint", default=str(common.SHIPPED_FONTS), help="model to measure")
    p.add_argument("--pairs", type=int, default=4, help="random pairs per slot, besides issue 17's pair")
    p.add_argument("--frames", type=int, default=11)
    p.add_argument("--strip", help="also save issue 17's pair, straight line above on-data path, as a PNG")
    args = p.parse_args()
    common.apply_threads(args.threads)
    from studio.service.composition import Composition, ItemSource, SlotValue
    from studio.service.model_service import ModelService

    report = common.Report("interpolation_on_data", common.machine())
    report.start("interpolation frames: straight line vs on-data path")
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        service = ModelService(device="cpu", cache_dir=Path(tmp))
        try:
            info = service.load_checkpoint(args.checkpoint)
            dataset = service.dataset
            real = dataset.images(np.arange(len(dataset)))
            if real.shape[1] != info.resolution:
                raise SystemExit("the dataset's resolution differs from the model's; use the model's own dataset")
            rng = np.random.default_rng(0)
            train = service._train_items(service._state)
            pairs = [("background_color", 1695, 4192)] if len(dataset) > 4192 else []
            pairs += [(slot, int(a), int(b)) for slot in info.slot_names
                      for a, b in rng.choice(train, size=(1 if args.quick else args.pairs, 2), replace=False)]
            rows = []
            strips = []
            for slot, a, b in pairs:
                comp = Composition({n: SlotValue() for n in info.slot_names}, ItemSource(a)).with_slot(
                    slot, SlotValue(a=ItemSource(a), b=ItemSource(b)))
                manifold = service.manifold(slot)
                scores = {}
                for follow in (False, True):
                    service.follow_data = follow
                    frames = np.stack(service.interpolate(comp, slot, args.frames))
                    lat = [service.compose(comp.with_slot(slot, comp.slot(slot).with_t(float(t)))).latents[slot]
                           for t in np.linspace(0, 1, args.frames)]
                    scores[follow] = (nearest_rmse(frames, real), manifold.distance(np.stack(lat)))
                    if (slot, a, b) == pairs[0]:
                        strips.append(np.concatenate(list(frames), axis=1))
                (line, line_d), (data, data_d) = scores[False], scores[True]
                rows.append([f"{slot} {a}->{b}", f"{line.max():.3f}", f"{data.max():.3f}", f"{line.mean():.3f}",
                             f"{data.mean():.3f}", f"{max(line[0], line[-1]):.3f}", f"{line_d.max():.1f}",
                             f"{data_d.max():.1f}"])
                report.add(slot=slot, a=a, b=b, line_rmse=line.tolist(), data_rmse=data.tolist(),
                           line_spacings=line_d.tolist(), data_spacings=data_d.tolist())
            report.table("RMSE of each frame to the nearest real image (max and mean over t), and the slot "
                         "latent's distance to the data (typical spacings, max over t)",
                         ["pair", "line max", "data max", "line mean", "data mean", "ends", "line far",
                          "data far"], rows)
            if args.strip and strips:
                from PIL import Image

                Image.fromarray(np.concatenate(strips, axis=0)).save(args.strip)
                print(f"wrote {args.strip}")
        finally:
            service.shutdown()
    report.finish(args.json)


if __name__ == "__main__":
    main()
