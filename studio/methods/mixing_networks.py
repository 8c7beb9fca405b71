"""LORBMS' networks (thesis Tables 3.1-3.3): an FC-DenseNet encoder that keeps a latent grid (no fully connected
layer, so every cell keeps its place), its mirror-image decoder, and the quadrant classifier that tells which
quadrants of a mix came from which replacement image. The method that trains them is ``studio.methods.mixing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from studio.methods.blocks import make_norm
from studio.methods.losses import patch_layers

if TYPE_CHECKING:
    from studio.methods.mixing import MixingConfig


def _fit_blocks(blocks: tuple, count: int) -> list[int]:
    values = [int(b) for b in blocks] or [1]
    return (values + [values[-1]] * count)[:count]


def _sn(conv: nn.Module, enabled: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(conv) if enabled else conv


class CoordConv(nn.Module):
    """Append x and y coordinate channels in [-1, 1], so convolutions know where in the image they are."""

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
        return torch.cat([x, xs, ys], dim=1)


class DenseBlock(nn.Module):
    """Dense layers, each seeing all earlier outputs. Encoder layers: instance norm, ReLU, 3x3 conv; decoder layers:
    ReLU, (spectral-normalised) 3x3 conv. The encoder's block passes its input on; the decoder's only the new maps."""

    def __init__(self, in_channels: int, layers: int, growth: int, encoder: bool, spectral: bool = False,
                 norm: str = "instance") -> None:
        super().__init__()
        self.keep_input = encoder
        mods = []
        for i in range(layers):
            cin = in_channels + i * growth
            conv = _sn(nn.Conv2d(cin, growth, 3, padding=1), spectral and not encoder)
            pre = [make_norm(norm, cin), nn.ReLU()] if encoder else [nn.ReLU()]
            mods.append(nn.Sequential(*pre, conv))
        self.layers = nn.ModuleList(mods)
        self.out_channels = (in_channels if encoder else 0) + layers * growth

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, dim=1)))
        return torch.cat(feats if self.keep_input else feats[1:], dim=1)


class QuadrantEncoder(nn.Module):
    """CoordConv, 3x3 conv, then dense blocks each followed by a transition down (instance norm, ReLU, 1x1 conv,
    2x2 max-pool) until the latent grid; a 1x1 conv gives the chunk channels. No fully connected layer, so every
    grid cell keeps its place (thesis Table 3.1)."""

    def __init__(self, config: MixingConfig, downs: int) -> None:
        super().__init__()
        c = config
        mods: list[nn.Module] = [CoordConv(), nn.Conv2d(5, c.stem_width, 3, padding=1)]
        channels = c.stem_width
        self.block_channels: list[int] = []
        for n in _fit_blocks(c.encoder_blocks, downs):
            block = DenseBlock(channels, n, c.growth_rate, encoder=True, norm=c.norm)
            channels = block.out_channels
            mods += [block, make_norm(c.norm, channels), nn.ReLU(), nn.Conv2d(channels, channels, 1),
                     nn.MaxPool2d(2)]
            self.block_channels.append(channels)
        mods.append(nn.Conv2d(channels, c.chunk_channels, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)


class QuadrantDecoder(nn.Module):
    """Mirror of the encoder: transitions up by resize-convolution (nearest x2, 3x3 conv), dense blocks passing on
    only their new maps, a 1x1 conv to RGB and tanh; spectral norm on every conv (thesis Table 3.3)."""

    def __init__(self, config: MixingConfig, downs: int, block_channels: list[int]) -> None:
        super().__init__()
        c = config
        sn = c.spectral_norm
        mods: list[nn.Module] = []
        channels = c.chunk_channels
        for i, n in enumerate(_fit_blocks(c.decoder_blocks, downs)):
            up = block_channels[downs - 1 - i]
            mods += [nn.Upsample(scale_factor=2, mode="nearest"), _sn(nn.Conv2d(channels, up, 3, padding=1), sn)]
            block = DenseBlock(up, n, c.growth_rate, encoder=False, spectral=sn)
            mods.append(block)
            channels = block.out_channels
        mods += [nn.ReLU(), _sn(nn.Conv2d(channels, 3, 1), sn), nn.Tanh()]
        self.net = nn.Sequential(*mods)

    def forward(self, grid: Tensor) -> Tensor:
        return self.net(grid)


class QuadrantClassifier(nn.Module):
    """Given a mix and one replacement image (stacked on the channels), four logits: does quadrant i of the mix
    come from that image? Replacements keep their place, so the net compares the two images region by region."""

    def __init__(self, width: int, resolution: int) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        channels = 6
        for i in range(patch_layers(resolution, 4, smallest_map=2)):
            out = width * 2**i
            mods += [nn.Conv2d(channels, out, 4, 2, 1), nn.LeakyReLU(0.2)]
            channels = out
        self.trunk = nn.Sequential(*mods)
        self.head = nn.Conv2d(channels, 1, 1)

    def forward(self, mix: Tensor, candidate: Tensor) -> Tensor:
        f = F.adaptive_avg_pool2d(self.trunk(torch.cat([mix, candidate], dim=1)), 2)
        return self.head(f).flatten(1)
