"""LPIPS and FID of zero-shot syntheses, where their pretrained weights are already on this machine.

Nothing is downloaded (the rule ``studio.methods.perceptual`` follows for VGG): the files are looked for under the
exact names the usual tools would have saved them with, read with ``weights_only=True``, and without them the
evaluation is skipped with a message that names the files it looked for.

- LPIPS (Zhang et al. 2018, v0.1): AlexNet features at five depths, unit-normalised over channels, squared
  differences weighted by the learnt linear layers, averaged over positions and summed. Needs torchvision's
  ``alexnet-owt-7be5be79.pth`` in the torch hub cache and the linear layers ``alex.pth`` that the ``lpips`` package
  ships (``lpips/weights/v0.1/alex.pth``, or the same file in the hub cache).
- FID: the Frechet distance between Gaussians fitted to the 2048-d pool features of Inception-v3 on the true and
  the synthesised images. Needs torchvision's ``inception_v3_google-0cc3c7bd.pth``; with torchvision's weights the
  figure is close to, not identical with, the TensorFlow reference FID, and with a few hundred images it is biased
  upwards, so compare figures made with the same number of images only.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from studio.evaluation.suite import EvalContext, EvaluationSkipped, evaluation, fmt
from studio.evaluation.zero_shot import (
    PROTOCOLS,
    _queries,
    _synthesize,
    attribute_slots_cover_schema,
    zero_shot_targets,
)

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LPIPS_LIN_FILE = "alex.pth"
INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"
#: LPIPS' input scaling (its ScalingLayer), for images in [-1, 1].
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
ALEXNET_CHANNELS = (64, 192, 384, 256, 256)
#: Indices into torchvision's ``alexnet().features`` after which LPIPS reads (the ReLUs).
ALEXNET_TAPS = (1, 4, 7, 9, 11)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def hub_file(name: str) -> Path | None:
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    return path if path.is_file() else None


def lpips_lin_file() -> Path | None:
    """The ``lpips`` package's v0.1 AlexNet linear layers, if the package (or a copy in the hub cache) is here."""
    spec = importlib.util.find_spec("lpips")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "weights" / "v0.1" / LPIPS_LIN_FILE
        if path.is_file():
            return path
    return hub_file(f"lpips-v0.1-{LPIPS_LIN_FILE}")


class LPIPS(nn.Module):
    """LPIPS distance per image pair, (B,), for images in [-1, 1]."""

    def __init__(self, alexnet_file: Path, lin_file: Path) -> None:
        super().__init__()
        from torchvision.models import alexnet

        net = alexnet(weights=None)
        net.load_state_dict(torch.load(alexnet_file, map_location="cpu", weights_only=True))
        self.features = net.features[: ALEXNET_TAPS[-1] + 1].eval()
        lin = torch.load(lin_file, map_location="cpu", weights_only=True)
        self.lins = nn.ParameterList([nn.Parameter(lin[f"lin{k}.model.1.weight"].float(), requires_grad=False)
                                      for k in range(len(ALEXNET_CHANNELS))])
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))

    def _taps(self, x: Tensor) -> list[Tensor]:
        out, h = [], (x - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in ALEXNET_TAPS:
                out.append(h / (h.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    @torch.no_grad()
    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        total = torch.zeros(a.shape[0], device=a.device)
        for fa, fb, w in zip(self._taps(a), self._taps(b), self.lins):
            total += F.conv2d((fa - fb).pow(2), w).mean(dim=(1, 2, 3))
        return total


class InceptionPool(nn.Module):
    """Inception-v3's 2048-d average-pool features of images in [-1, 1] (resized to 299 px)."""

    def __init__(self, weights_file: Path) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        net.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
        net.fc = nn.Identity()
        self.net = net.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = F.interpolate((images + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature rows ``a`` and ``b``:
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))."""
    from scipy import linalg

    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = linalg.sqrtm(s_a @ s_b, disp=False)
    if not np.isfinite(root).all():  # nearly singular: nudge the diagonals, as the reference code does
        eps = np.eye(len(s_a)) * 1e-6
        root = linalg.sqrtm((s_a + eps) @ (s_b + eps))
    root = np.real(root)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(root))


def available() -> dict[str, Any]:
    """Which of the two figures can be computed here, and the files looked for where not."""
    alex, lin, inception = hub_file(ALEXNET_FILE), lpips_lin_file(), hub_file(INCEPTION_FILE)
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    missing = {}
    if alex is None or lin is None:
        missing["lpips"] = (f"needs {hub / ALEXNET_FILE} and the lpips package's weights/v0.1/{LPIPS_LIN_FILE} "
                            f"(or {hub / f'lpips-v0.1-{LPIPS_LIN_FILE}'})")
    if inception is None:
        missing["fid"] = f"needs {hub / INCEPTION_FILE}"
    return {"alexnet": alex, "lpips_lin": lin, "inception": inception, "missing": missing}


def _format(result: dict[str, Any]) -> str:
    lines = []
    for protocol in PROTOCOLS:
        if protocol in result:
            r = result[protocol]
            lines.append(f"{protocol} query: LPIPS {fmt(r.get('lpips'), 4)}, FID {fmt(r.get('fid'), 2)}")
    for name, why in result.get("not_computed", {}).items():
        lines.append(f"{name.upper()} not computed: {why}")
    lines.append(f"{result['n']} held-out combinations against their true renderings")
    return "\n".join(lines)


@evaluation("perceptual", applies=attribute_slots_cover_schema, order=11,
            title="Zero-shot LPIPS and FID (pretrained weights on this machine only)", formatter=_format)
@torch.no_grad()
def perceptual(ctx: EvalContext) -> dict[str, Any]:
    """LPIPS and FID of the zero-shot syntheses (the ``zero_shot`` targets and queries) against the truth."""
    found = available()
    if len(found["missing"]) == 2:
        raise EvaluationSkipped("no pretrained weights for LPIPS or FID on this machine (nothing is downloaded): "
                                f"LPIPS {found['missing']['lpips']}; FID {found['missing']['fid']}")
    lpips = LPIPS(found["alexnet"], found["lpips_lin"]).to(ctx.device) if "lpips" not in found["missing"] else None
    inception = InceptionPool(found["inception"]).to(ctx.device) if "fid" not in found["missing"] else None
    targets = zero_shot_targets(ctx)
    if len(targets) == 0:
        raise EvaluationSkipped("the split holds out no test items")
    result: dict[str, Any] = {"n": len(targets), "not_computed": found["missing"]}
    batches = [targets[s:s + ctx.batch_size] for s in range(0, len(targets), ctx.batch_size)]
    truth_features = (np.concatenate([inception(ctx.images(b)).cpu().numpy() for b in batches])
                      if inception is not None else None)
    for protocol in (p for p in PROTOCOLS if p in ctx.protocols):
        queries = _queries(ctx, targets, protocol)
        distances, features = [], []
        start = 0
        for batch in batches:
            synth = _synthesize(ctx, queries[start:start + len(batch)])
            start += len(batch)
            if lpips is not None:
                distances.append(lpips(synth, ctx.images(batch)).cpu())
            if inception is not None:
                features.append(inception(synth).cpu().numpy())
        r: dict[str, Any] = {}
        if distances:
            r["lpips"] = float(torch.cat(distances).mean())
        if features and truth_features is not None:
            r["fid"] = frechet_distance(np.concatenate(features), truth_features)
        result[protocol] = r
    return result
