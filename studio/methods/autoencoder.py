"""Paper 000's Table 2 baselines: a plain autoencoder (``ae``) and a beta-VAE (``betavae``, Higgins et al. 2017),
each with one flat latent and no attribute labels in training.

Neither says which latent dimensions hold which attribute, so they cannot swap attributes by themselves; the
``exhaustive_search`` evaluation finds the partitioning of the latent that best predicts the attributes on
training items (the paper's "+ES") and then synthesises the zero-shot targets with it. The networks are GZS-Net's
encoder and decoder (same options), so the comparison is about the training signal, not the architecture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from studio.methods.base import Batch, Latents, Method, MethodContext, SlotSpec, StepContext
from studio.methods.blocks import NORMS, ConvDecoder, ConvEncoder
from studio.methods.config import option
from studio.methods.optimizers import adam

if TYPE_CHECKING:
    from studio.training.data import TrainingData

LATENT_SLOT = "z"


@dataclass
class AutoencoderConfig:
    """Options of the plain autoencoder baseline (paper 000, appendix B.1: a 100-d latent)."""

    latent_dim: int = option(100, "size of the one flat latent (paper: 100)", low=1)
    width: int = option(16, "channels after the conv stem; the deepest convs use 4x", low=4)
    hidden: int = option(256, "units of the hidden fully connected layer", low=8)
    residual_blocks: int = option(1, "residual blocks in the encoder and in the decoder", low=0, high=16)
    norm: str = option("instance", "normalisation in the conv layers", choices=NORMS)
    kernel: int = option(3, "kernel size of the stem and output convolutions", choices=(3, 5, 7))
    lr: float = option(5e-4, "Adam learning rate", low=0.0)
    pixel_loss: str = option("mse", "reconstruction distance", choices=("l1", "mse"))


@dataclass
class BetaVAEConfig(AutoencoderConfig):
    """Options of the beta-VAE baseline: the autoencoder's plus the weight of the KL term."""

    beta: float = option(4.0, "weight of the KL divergence to the unit Gaussian prior (beta-VAE; 1 is a plain VAE)",
                         low=0.0)


class Autoencoder(Method):
    """Encoder to one latent vector, decoder back; trained on reconstruction alone."""

    name = "ae"
    title = "Autoencoder (paper 000 baseline, + exhaustive search)"
    config_class = AutoencoderConfig
    needs_labels = False
    #: Encoder outputs per latent dimension: the code (and, for the VAE, its log-variance).
    outputs_per_dim = 1

    def __init__(self, config: AutoencoderConfig, context: MethodContext) -> None:
        super().__init__(config, context)
        arch = {"width": config.width, "hidden": config.hidden, "residual_blocks": config.residual_blocks,
                "norm": config.norm, "kernel": config.kernel}
        self.encoder = ConvEncoder(context.resolution, config.latent_dim * self.outputs_per_dim, **arch)
        self.decoder = ConvDecoder(context.resolution, config.latent_dim, **arch)
        self._slots = [SlotSpec(LATENT_SLOT, (config.latent_dim,), None, "latent")]

    @property
    def slots(self) -> list[SlotSpec]:
        return list(self._slots)

    def encode(self, images: Tensor) -> Latents:
        return {LATENT_SLOT: self.encoder(images)[:, :self.config.latent_dim]}

    def decode(self, latents: Latents) -> Tensor:
        return self.decoder(latents[LATENT_SLOT])

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.parameters(), lr=self.config.lr)}

    def sample_batch(self, data: TrainingData, rng: np.random.Generator, batch_size: int) -> Batch:
        items = rng.choice(data.train_indices, size=batch_size)
        return {"images": data.images(items)}

    def pixel_loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(output, target) if self.config.pixel_loss == "mse" else F.l1_loss(output, target)

    def compute_losses(self, batch: Batch) -> dict[str, Tensor]:
        x = batch["images"]
        recon = self.pixel_loss(self.decoder(self.encoder(x)), x)
        return {"loss": recon, "reconstruction": recon}

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer], step: int,
                      ctx: StepContext) -> dict[str, float]:
        with ctx.autocast():
            losses = self.compute_losses(batch)
        ctx.step(losses["loss"], optimizers["model"])
        return {k: float(v.detach()) for k, v in losses.items()}


class BetaVAE(Autoencoder):
    """A VAE whose KL term is weighted by beta; ``encode`` gives the posterior mean (what swaps and probes use)."""

    name = "betavae"
    title = "beta-VAE (paper 000 baseline, + exhaustive search)"
    config_class = BetaVAEConfig
    outputs_per_dim = 2

    def posterior(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | x), each (B, latent_dim); the log-variance is kept within +-10."""
        out = self.encoder(images)
        d = self.config.latent_dim
        return out[:, :d], out[:, d:].clamp(-10.0, 10.0)

    def compute_losses(self, batch: Batch) -> dict[str, Tensor]:
        x = batch["images"]
        mean, logvar = self.posterior(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        recon = self.pixel_loss(self.decoder(z), x)
        # KL(q || N(0, I)) per image, summed over dimensions; scaled to the per-pixel reconstruction mean so that
        # beta keeps its usual meaning (beta * KL against the summed log-likelihood) up to one constant factor.
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()
        pixels = math.prod(x.shape[1:])
        loss = recon + self.config.beta * kl / pixels
        return {"loss": loss, "reconstruction": recon, "kl": kl}
