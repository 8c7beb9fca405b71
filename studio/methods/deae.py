"""DEAE (paper 003): GZS-Net plus an interpolation regulariser that makes each attribute's chunk convex.

Each step, besides GZS-Net's group losses, takes a few group centres, replaces one attribute's chunk by a point
drawn elementwise uniformly between the centre's chunk and another training item's chunk, decodes it, encodes the
result again, and penalises how far the *other* chunks moved from the centre's (paper 003, eqs. 1-3). A decoder
that renders in-between values faithfully, and an encoder that reads them without leaking into other chunks, is
what makes interpolation and direction moves in the composer trustworthy.

The group losses, networks and slots are GZS-Net's (subclassed, not copied). The regulariser adds one encode of
the interpolation sources, one decode of every draw and one re-encode, whatever the number of draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import Tensor

from studio.methods.base import Batch, TrainingRecipe
from studio.methods.config import option
from studio.methods.gzs import GZSConfig, GZSNet

if TYPE_CHECKING:
    from studio.training.data import TrainingData

DISTANCES = ("l1", "mse")


@dataclass
class DEAEConfig(GZSConfig):
    """GZS-Net's options plus the interpolation regulariser's."""

    weight_interpolation: float = option(1.0, "weight of the interpolation regulariser (lambda_reg, paper 003 eq. 3; "
                                         "the lab's code used 1e-3 with MSE)", low=0.0)
    interpolation_draws: int = option(10, "interpolated latents per step (the lab's code: 10)", low=1)
    interpolation_distance: str = option("l1", "distance between re-encoded and original chunks (paper: L1, "
                                         "code: MSE)", choices=DISTANCES)


class DEAE(GZSNet):
    """Disentangled Exploration Autoencoder: GZS-Net's slots and losses, plus interpolation regularisation."""

    name = "deae"
    title = "DEAE"
    config_class = DEAEConfig
    #: GZS-Net's CPU recipe turns off the terms DEAE builds on; DEAE has none of its own yet.
    recipes: ClassVar[dict[str, TrainingRecipe]] = {}

    def sample_batch(self, data: TrainingData, rng: np.random.Generator, batch_size: int) -> Batch:
        """GZS-Net's groups, plus the regulariser's random choices: which group, which attribute, and the
        elementwise mixing weights of each draw (drawn here so a resumed run repeats them)."""
        batch = super().sample_batch(data, rng, batch_size)
        draws = self.config.interpolation_draws
        batch["interp_group"] = torch.from_numpy(np.arange(draws) % batch_size).to(data.device)
        batch["interp_attribute"] = torch.from_numpy(rng.integers(self.num_attributes, size=draws)).to(data.device)
        batch["interp_mix"] = torch.from_numpy(rng.random((draws, self.latent_dim), dtype=np.float32)).to(data.device)
        return batch

    def interpolate(self, base: Tensor, donor: Tensor, attribute: Tensor, mix: Tensor) -> Tensor:
        """``base`` with chunk ``attribute`` (per row) replaced by ``mix * base + (1 - mix) * donor``."""
        mask = self.chunk_mask[attribute]
        return torch.where(mask, mix * base + (1 - mix) * donor, base)

    def interpolation_loss(self, batch: Batch) -> Tensor:
        """Paper 003 eq. 2: distance between the re-encoded and original chunks the interpolation left alone."""
        images = batch["images"]
        b, m = batch["items"].shape[0], self.num_attributes
        x = images.view(b, m + 2, *images.shape[1:])
        group, attribute = batch["interp_group"], batch["interp_attribute"]
        sources = self.encoder(torch.cat([x[group, 0], x[group, m + 1]]))  # centres and donors (random items)
        base, donor = sources.chunk(2)
        mixed = self.interpolate(base, donor, attribute, batch["interp_mix"].to(base.dtype))
        again = self.encoder(self.decoder(mixed).to(images.dtype))
        kept = ~self.chunk_mask[attribute]
        diff = (again - base.detach()).float()
        distance = diff.abs() if self.config.interpolation_distance == "l1" else diff.pow(2)
        return (distance * kept).sum() / kept.sum().clamp_min(1)

    def compute_losses(self, batch: Batch) -> dict[str, Tensor]:
        losses = super().compute_losses(batch)
        weight = self.config.weight_interpolation
        if weight > 0:
            losses["interpolation"] = self.interpolation_loss(batch)
            losses["loss"] = losses["loss"] + weight * losses["interpolation"]
        return losses
