"""A decoder that paints two colour layers through an alpha mask, its convolutions steered by the latent.

Why not the paper's decoder (``blocks.ConvDecoder``): it pushes the whole latent through a wide fully connected
layer into an 8x8 map and then through instance-normalised transposed convolutions. Two things follow, both
measured on the shipped Fonts model:

- Instance norm removes each feature map's scale, so the network smuggles scale past it with one bright spike
  that dominates the map's statistics (StyleGAN2's "droplet" artefact): in the decoder of models/fonts-gzs a
  single position of a 16x16 map holds on average 20% of a channel's energy (up to 83%), and 45 of 48 decoded
  training images carry a spurious yellow blob near the centre.
- Every pixel has to be re-learnt from the flat code, so thin strokes and flat colours come slowly and blur.

Here the latent reaches every resolution instead (FiLM: each convolution's output is scaled and shifted per
channel by an affine map of the latent, as LORD's AdaIN generator and StyleGAN's styles do, without the
normalisation that caused the spikes), the base map gets coordinate channels (CoordConv) so position is easy to
express, and the output is ``alpha * foreground + (1 - alpha) * background``: two colour layers, each a colour
read from the latent plus a per-pixel residual, composed through a sigmoid mask. A glyph or a sprite on a plain
ground is then a sharp mask and two flat colours; photographs still fit, through the residuals.

Unbounded residuals let a network ignore the mask: the full-Fonts model of 2026-12-06 paints glyphs with them
(its mask is nearly flat, the residuals average 6 before the tanh), so a glyph's colour can appear wherever a
residual fires, e.g. a faint speckle above a letter. ``texture`` bounds each residual (``texture * tanh``), which
leaves the mask as the only way to draw a shape whose colour differs from the ground.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from studio.methods.blocks import bottleneck_size


def coordinate_channels(side: int, batch: int, like: Tensor) -> Tensor:
    """(batch, 2, side, side) x and y coordinates in [-1, 1]."""
    ramp = torch.linspace(-1.0, 1.0, side, device=like.device, dtype=like.dtype)
    ys, xs = torch.meshgrid(ramp, ramp, indexing="ij")
    return torch.stack([xs, ys]).unsqueeze(0).expand(batch, -1, -1, -1)


class ModulatedConv(nn.Module):
    """conv3x3 whose output channels are scaled by ``1 + gamma(z)`` and shifted by ``beta(z)``, then LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, latent_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.style = nn.Linear(latent_dim, 2 * out_channels)
        nn.init.zeros_(self.style.weight)  # start as a plain convolution; the latent learns to steer it
        nn.init.zeros_(self.style.bias)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: Tensor, latent: Tensor) -> Tensor:
        gamma, beta = self.style(latent).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return self.act(self.conv(x) * (1.0 + gamma) + beta)


class LayeredDecoder(nn.Module):
    """Flat latent (B, latent_dim) -> image (B, 3, R, R) in [-1, 1], as two colour layers through an alpha mask;
    ``texture`` > 0 bounds how far a layer's pixels may depart from its flat colour (before the tanh)."""

    def __init__(self, resolution: int, latent_dim: int, width: int = 32, hidden: int = 512,
                 residual_blocks: int = 1, out_channels: int = 3, texture: float = 0.0) -> None:
        super().__init__()
        self.texture = float(texture)
        self.side = bottleneck_size(resolution)
        deep = 4 * width
        self.base_channels = deep
        self.head = nn.Sequential(nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Linear(hidden, deep * self.side * self.side))
        # (in, out) channels of each modulated convolution, resolution by resolution: the base map (with its two
        # coordinate channels) gets ``residual_blocks`` of them, then every doubling gets one.
        stages = [(deep + 2, deep)] + [(deep, deep)] * max(0, residual_blocks - 1)
        self.base = nn.ModuleList(ModulatedConv(i, o, latent_dim) for i, o in stages)
        channels = [deep, deep, 2 * width, width]
        self.ups = nn.ModuleList(ModulatedConv(channels[k], channels[k + 1], latent_dim) for k in range(3))
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.alpha = nn.Conv2d(width, 1, 3, 1, 1)
        self.colours = nn.Linear(latent_dim, 2 * out_channels)
        self.residuals = nn.Conv2d(width, 2 * out_channels, 3, 1, 1)
        nn.init.zeros_(self.residuals.weight)  # flat layers until the data asks for texture
        nn.init.zeros_(self.residuals.bias)

    def forward(self, latent: Tensor) -> Tensor:
        b = latent.shape[0]
        x = self.head(latent).view(b, self.base_channels, self.side, self.side)
        x = torch.cat([x, coordinate_channels(self.side, b, x)], dim=1)
        for layer in self.base:
            x = layer(x, latent)
        for layer in self.ups:
            x = layer(self.upsample(x), latent)
        alpha = torch.sigmoid(self.alpha(x))
        flat = self.colours(latent).unsqueeze(-1).unsqueeze(-1)
        residual = self.residuals(x)
        if self.texture > 0:
            residual = self.texture * torch.tanh(residual)
        front, back = torch.tanh(flat + residual).chunk(2, dim=1)
        return alpha * front + (1.0 - alpha) * back
