"""Reconstruction losses for methods that want more than plain L1: VGG perceptual features when torchvision's
ImageNet VGG weights are already on this machine, otherwise pixel L1 plus an SSIM term.

We never download weights: the VGG file is looked for in torch's hub cache under the exact name torchvision
would have given it, and read with ``weights_only=True``. Which loss a run used is part of its config, so a
checkpoint says how it was trained.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from studio.errors import StudioError
from studio.evaluation.metrics import ssim

LOSS_KINDS = ("auto", "vgg", "pixel")
# Feature taps after the ReLUs that close each VGG block (GLANN/LORD use blocks 1-4).
_VGG_TAPS = {"vgg16": (3, 8, 15, 22), "vgg19": (3, 8, 17, 26)}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _weights_enum(arch: str):
    from torchvision.models import VGG16_Weights, VGG19_Weights

    return {"vgg16": VGG16_Weights, "vgg19": VGG19_Weights}[arch].IMAGENET1K_V1


def cached_vgg_weights() -> tuple[str, Path] | None:
    """(architecture, file) of ImageNet VGG weights already in the torch hub cache, or None."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for arch in _VGG_TAPS:
        path = folder / Path(_weights_enum(arch).url).name
        if path.is_file():
            return arch, path
    return None


def resolve_loss_kind(kind: str) -> str:
    """'auto' becomes 'vgg' where the weights are cached and 'pixel' elsewhere; explicit choices stay."""
    if kind not in LOSS_KINDS:
        raise StudioError(f"reconstruction loss {kind!r} is unknown; choose one of {', '.join(LOSS_KINDS)}")
    if kind == "auto":
        return "vgg" if cached_vgg_weights() is not None else "pixel"
    return kind


class PixelLoss(nn.Module):
    """L1 on pixels plus ``ssim_weight`` x (1 - SSIM): L1 alone blurs edges, SSIM keeps local structure."""

    def __init__(self, ssim_weight: float = 1.0) -> None:
        super().__init__()
        self.ssim_weight = float(ssim_weight)

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        loss = (output - target).abs().mean()
        if self.ssim_weight > 0:
            loss = loss + self.ssim_weight * (1 - ssim(output, target)).mean()
        return loss


class VGGPerceptualLoss(nn.Module):
    """Pixel L1 plus L1 distances of frozen ImageNet VGG features (the loss LORD was trained with)."""

    def __init__(self, arch: str, weights_file: Path) -> None:
        super().__init__()
        from torchvision.models import vgg16, vgg19

        net = {"vgg16": vgg16, "vgg19": vgg19}[arch](weights=None)
        try:
            state = torch.load(weights_file, map_location="cpu", weights_only=True)
        except Exception as e:  # a damaged download is the user's to fix, not a crash
            raise StudioError(f"{weights_file}: cannot read the VGG weights ({e}); delete the file or use "
                              "--recon-loss pixel") from None
        features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        taps = _VGG_TAPS[arch]
        layers = net.features[: taps[-1] + 1]
        try:
            layers.load_state_dict({k: v for k, v in features.items() if int(k.split(".")[0]) <= taps[-1]})
        except RuntimeError as e:
            raise StudioError(f"{weights_file}: these are not {arch} weights ({e})") from None
        self.layers = layers.eval().requires_grad_(False)
        self.taps = taps
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGGPerceptualLoss:
        super().train(mode)
        self.layers.eval()  # frozen features: never let a trainer's .train() switch them
        return self

    def _features(self, x: Tensor) -> list[Tensor]:
        h = ((x.float() + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i in self.taps:
                out.append(h)
        return out

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        loss = (output - target).abs().mean()
        for a, b in zip(self._features(output), self._features(target.detach())):
            loss = loss + (a - b).abs().mean()
        return loss


def make_reconstruction_loss(kind: str, ssim_weight: float = 1.0) -> nn.Module:
    """Build the loss for a resolved kind ('vgg' or 'pixel'); 'vgg' without cached weights is a user error."""
    kind = resolve_loss_kind(kind)
    if kind == "pixel":
        return PixelLoss(ssim_weight)
    found = cached_vgg_weights()
    if found is None:
        folder = Path(torch.hub.get_dir()) / "checkpoints"
        raise StudioError(f"this run uses the VGG perceptual loss, but no VGG16/VGG19 ImageNet weights are in "
                          f"{folder}; put {Path(_weights_enum('vgg16').url).name} there or train with "
                          "--recon-loss pixel")
    return VGGPerceptualLoss(*found)
