"""Convolutional building blocks shared by the methods: norms, residual blocks, and the GZS-style encoder/decoder.

The encoder follows paper 000 (section 5): a conv stem, two stride-2 convolutions, residual blocks, one more
stride-2 convolution, then two fully connected layers to the latent. The decoder mirrors it and ends in tanh, so
images live in [-1, 1]. Widths, depth, norm and upsampling are parameters because what is fast on a laptop CPU
(narrow convs, small FC layers) differs from what the paper ran on GPUs.
"""

from __future__ import annotations

from torch import Tensor, nn

NORMS = ("instance", "group", "batch", "none")
UPSAMPLES = ("deconv", "resize")
DOWNSAMPLINGS = 3


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer by name. Instance and group norm keep samples independent, so a batch of
    swapped latents decodes exactly as its members would one at a time; batch norm does not."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(_groups_for(channels), channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")


def _groups_for(channels: int) -> int:
    for groups in (8, 4, 2):
        if channels % groups == 0:
            return groups
    return 1


def conv_norm_relu(in_channels: int, out_channels: int, kernel: int, stride: int, norm: str) -> nn.Sequential:
    padding = (kernel - stride + 1) // 2 if stride > 1 else kernel // 2
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=norm == "none"),
                         make_norm(norm, out_channels), nn.ReLU(inplace=True))


def upsample_norm_relu(in_channels: int, out_channels: int, norm: str, mode: str) -> nn.Sequential:
    """Double the spatial size: a 4x4 transposed conv (the paper) or nearest resize + 3x3 conv (no checkerboard)."""
    if mode == "deconv":
        up: list[nn.Module] = [nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=norm == "none")]
    elif mode == "resize":
        up = [nn.Upsample(scale_factor=2, mode="nearest"),
              nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=norm == "none")]
    else:
        raise ValueError(f"unknown upsampling {mode!r}; choose one of {', '.join(UPSAMPLES)}")
    return nn.Sequential(*up, make_norm(norm, out_channels), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection (same channels and size in and out)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=norm == "none"), make_norm(norm, channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=norm == "none"), make_norm(norm, channels),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.body(x))


def bottleneck_size(resolution: int) -> int:
    """Side of the smallest feature map; the resolution must halve cleanly three times."""
    factor = 2**DOWNSAMPLINGS
    if resolution % factor or resolution < 2 * factor:
        raise ValueError(f"resolution {resolution} must be a multiple of {factor} and at least {2 * factor}")
    return resolution // factor


class ConvEncoder(nn.Module):
    """Image (B, C, R, R) -> flat latent (B, latent_dim)."""

    def __init__(self, resolution: int, latent_dim: int, width: int = 32, hidden: int = 512,
                 residual_blocks: int = 3, norm: str = "instance", kernel: int = 7, in_channels: int = 3) -> None:
        super().__init__()
        side = bottleneck_size(resolution)
        deep = 4 * width
        self.features = nn.Sequential(
            conv_norm_relu(in_channels, width, kernel, 1, norm),
            conv_norm_relu(width, 2 * width, 4, 2, norm),
            conv_norm_relu(2 * width, deep, 4, 2, norm),
            *[ResidualBlock(deep, norm) for _ in range(residual_blocks)],
            conv_norm_relu(deep, deep, 4, 2, norm),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(deep * side * side, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, latent_dim))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))


class ConvDecoder(nn.Module):
    """Flat latent (B, latent_dim) -> image (B, C, R, R) in [-1, 1]; the encoder's mirror image."""

    def __init__(self, resolution: int, latent_dim: int, width: int = 32, hidden: int = 512,
                 residual_blocks: int = 3, norm: str = "instance", kernel: int = 7, out_channels: int = 3,
                 upsample: str = "deconv") -> None:
        super().__init__()
        self.side = bottleneck_size(resolution)
        self.deep = 4 * width
        self.head = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, self.deep * self.side * self.side), nn.ReLU(inplace=True))
        self.features = nn.Sequential(
            upsample_norm_relu(self.deep, self.deep, norm, upsample),
            *[ResidualBlock(self.deep, norm) for _ in range(residual_blocks)],
            upsample_norm_relu(self.deep, 2 * width, norm, upsample),
            upsample_norm_relu(2 * width, width, norm, upsample),
            nn.Conv2d(width, out_channels, kernel, 1, kernel // 2),
            nn.Tanh(),
        )

    def forward(self, latent: Tensor) -> Tensor:
        x = self.head(latent).view(latent.shape[0], self.deep, self.side, self.side)
        return self.features(x)
