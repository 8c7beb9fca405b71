"""Droplet artefacts in a decoder: localized spikes in its feature maps and the blobs they leave in images.

StyleGAN2 (Karras et al. 2020, section 2) traced blob-shaped artefacts to instance normalisation: the generator
passes signal strength past the normalisation by making one strong, localized spike that dominates a feature
map's statistics. This script measures both ends for a checkpoint:

- peak share: for every feature map entering a decoder convolution or normalisation at 16 px or more, the
  fraction of the channel's energy (sum of squares) at its single largest position, averaged over channels and
  images (a spread-out map at 16x16 gives about 1/256; a glyph-shaped map a few per cent);
- blobs: reconstructions of training images with at least ``--blob-pixels`` pixels whose colour is more than
  ``--blob-error`` (in [0, 1], largest channel) from every input colour within 5 px: a patch of a colour that is
  in neither layer of the input (a blurred or missing stroke does not count).

It prints figures and asserts nothing. Example: ``.venv/bin/python benchmarks/decoder_droplets.py --checkpoint
models/fonts-gzs``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import Report, apply_threads, machine, parser


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0], checkpoint=False)
    p.add_argument("--checkpoint", action="append", default=None,
                   help="checkpoint, sidecar or run folder (repeat to compare several; default: models/fonts-gzs)")
    p.add_argument("--images", type=int, default=64, help="training images to decode (default 64)")
    p.add_argument("--blob-error", type=float, default=0.6)
    p.add_argument("--blob-pixels", type=int, default=4)
    args = p.parse_args(argv)
    checkpoints = args.checkpoint or [str(Path(__file__).resolve().parents[1] / "models" / "fonts-gzs")]

    import torch
    from torch import nn

    from studio.data.spec import open_dataset
    from studio.training.data import to_tensor
    from studio.training.model_io import load_model

    apply_threads(args.threads)
    report = Report("decoder_droplets", machine())
    report.start("Droplet artefacts: spikes in decoder feature maps, blobs in reconstructions")
    rows = []
    for path in checkpoints:
        loaded = load_model(path, "cpu")
        method = loaded.method.eval()
        dataset = open_dataset(f"{loaded.dataset_spec},res={method.context.resolution}")
        items = np.linspace(0, len(dataset) - 1, 8 if args.quick else args.images).astype(np.int64)
        x = to_tensor(dataset.images(items), torch.device("cpu"))
        shares: list[float] = []
        record = _peak_share_recorder(shares)

        decoder = getattr(method, "decoder", method)
        hooks = [m.register_forward_hook(record) for m in decoder.modules()
                 if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.InstanceNorm2d, nn.GroupNorm))]
        with torch.no_grad():
            y = method.reconstruct(x)
        for h in hooks:
            h.remove()
        foreign = foreign_colour_error(y.clamp(-1, 1), x)
        blobs = int(((foreign > args.blob_error).sum(dim=1) >= args.blob_pixels).sum())
        rows.append({"checkpoint": str(path), "decoder": getattr(method.config, "decoder", "conv"),
                     "norm": getattr(method.config, "norm", "?"), "images": len(items),
                     "mean_peak_share": round(float(np.mean(shares)), 4) if shares else None,
                     "images_with_blobs": blobs})
    for r in rows:
        report.add(**r)
    report.table(f"peak share: energy at a map's largest position (uniform 16x16: {1 / 256:.4f}); blobs: "
                 f">= {args.blob_pixels} px of a colour > {args.blob_error} from every input colour within 5 px",
                 ["checkpoint", "decoder", "norm", "mean peak share", "images with blobs"],
                 [[r["checkpoint"], r["decoder"], r["norm"], r["mean_peak_share"],
                   f"{r['images_with_blobs']} of {r['images']}"] for r in rows])
    report.finish(args.json)
    return 0


def foreign_colour_error(output, target, window: int = 5):
    """(N, HW): for each output pixel, how far its colour is (largest channel, in [0, 1]) from the nearest input
    colour within a ``window`` square around it. A blurred or missing stroke shows colours the input has nearby
    (its background, the blend at its edges) and scores low; a blob of a colour the input lacks scores high."""
    import torch.nn.functional as F

    n, c, h, w = target.shape
    around = F.unfold(target, window, padding=window // 2).view(n, c, window * window, h * w)
    return ((output.reshape(n, c, 1, h * w) - around).abs().amax(dim=1).amin(dim=1) / 2)


def _peak_share_recorder(shares: list[float]):
    """A forward hook that appends, for each 4-D input of 16 px or more, the mean share of a channel's energy held
    by its largest position."""

    def record(_module, inputs, _output) -> None:
        a = inputs[0].detach()
        if a.dim() != 4 or a.shape[-1] < 16:
            return
        energy = a.float().pow(2).flatten(2)
        share = energy.max(dim=2).values / energy.sum(dim=2).clamp_min(1e-12)
        shares.append(float(share.mean()))

    return record


if __name__ == "__main__":
    raise SystemExit(main())
