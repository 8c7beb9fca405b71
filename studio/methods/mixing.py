"""LORBMS, "Learning Object Representations by Mixing Scenes" (paper 002): an unsupervised autoencoder whose latent
is a spatial grid split into four quadrant chunks. Chunks of a reference image are replaced by the same quadrant's
chunk of visually similar images; the decoded mix must look real (non-saturating GAN, patch discriminator), let a
classifier find which quadrants came from which replacement image, and give the reference back when re-encoded and
its own chunks restored (cycle). Labels are never used.

Replacement candidates are each quadrant's k nearest neighbours in a feature space available without labels: pixel
PCA before training, the model's own quadrant codes once it has learnt some (refreshed every ``refresh_every``
steps). The mixing rule follows the thesis (Algorithm 1): one candidate per quadrant drawn uniformly from its
neighbour list; candidates farther than the threshold are skipped; at least one quadrant is kept and at least one
replaced.

This module holds the method and its options; the candidates and the mixing rule live in mixing_candidates, the
networks in mixing_networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from studio.errors import StudioError
from studio.methods.base import Batch, Latents, Method, MethodContext, SlotSpec, StepContext
from studio.methods.blocks import NORMS
from studio.methods.config import option
from studio.methods.losses import (
    PatchCritic,
    frozen,
    nonsaturating_discriminator_loss,
    nonsaturating_generator_loss,
    patch_layers,
)
from studio.methods.mixing_candidates import (
    QUADRANTS,
    SOURCES,
    CandidateStore,
    CandidateTable,
    build_candidates,
    draw_mix,
    draw_mixes,
    nearest_neighbours,
    pair_targets,
    pca_project,
    pixel_mosaic,
    pixel_quadrant_features,
    pool_key,
    quadrant_crops,
)
from studio.methods.mixing_networks import (
    CoordConv,
    DenseBlock,
    QuadrantClassifier,
    QuadrantDecoder,
    QuadrantEncoder,
)
from studio.methods.optimizers import adam

#: The names importers of this module have always found here (several now live in the modules above).
__all__ = ["QUADRANTS", "SOURCES", "CandidateStore", "CandidateTable", "CoordConv", "DenseBlock", "MixingConfig",
           "MixingMethod", "QuadrantClassifier", "QuadrantDecoder", "QuadrantEncoder", "build_candidates", "draw_mix",
           "draw_mixes", "nearest_neighbours", "pair_targets", "pca_project", "pixel_mosaic",
           "pixel_quadrant_features", "pool_key", "quadrant_crops"]


@dataclass
class MixingConfig:
    """LORBMS hyper-parameters. Loss weights, learning rates and update ratio follow the thesis; the network sizes
    default to a narrower version of its FC-DenseNet that trains on a laptop CPU (help texts give the thesis')."""

    mixing: bool = option(True, "mix quadrants of similar images; off trains the plain autoencoder baseline "
                                "(reconstruction loss only)")
    latent_grid: int = option(2, "side of the latent grid; 2 gives one vector per quadrant (thesis: 2 x 2 x 192)",
                              choices=(2, 4, 8))
    chunk_channels: int = option(64, "channels of every quadrant's code (thesis: 192)", low=1)
    stem_width: int = option(16, "channels of the encoder's first convolution (thesis: 48)", low=1)
    growth_rate: int = option(8, "new channels per dense layer (thesis: 16)", low=1)
    encoder_blocks: tuple[int, ...] = option((2, 2, 3, 3, 4), "dense layers per encoder block, from the input "
                                             "down; cut or extended with the last value to fit the image size "
                                             "(thesis: 4,5,7,10,12)")
    decoder_blocks: tuple[int, ...] = option((4, 3, 3, 2, 2), "dense layers per decoder block, from the latent "
                                             "grid up (thesis: 12,10,7,5,4)")
    norm: str = option("instance", "normalisation in the encoder's dense blocks (thesis: instance)", choices=NORMS)
    spectral_norm: bool = option(True, "spectral normalisation in the decoder and discriminator (thesis)")
    disc_width: int = option(32, "channels of the patch discriminator's first layer (thesis: 42)", low=1)
    disc_layers: int = option(4, "stride-2 layers of the patch discriminator (thesis: 4)", low=1)
    classifier_width: int = option(16, "channels of the quadrant classifier's first layer (thesis: an AlexNet)",
                                   low=1)
    neighbours: int = option(10, "replacement candidates per image and quadrant (thesis: 10)", low=1)
    threshold: float = option(0.0, "skip candidates farther than this L2 distance; 0 = use threshold_quantile",
                              low=0.0)
    threshold_quantile: float = option(0.5, "with threshold 0: the threshold is this quantile of all candidate "
                                            "distances, recomputed with every refresh", low=0.0, high=1.0)
    pca_components: int = option(32, "pixel-PCA dimensions of the candidates found before training", low=1)
    refresh_every: int = option(2000, "steps between recomputing candidates with the model's own encoder "
                                      "(0 = keep the pixel-PCA ones)", low=0)
    rec_weight: float = option(0.904, "weight of the L1 reconstruction loss (thesis: 0.904)", low=0.0)
    cycle_weight: float = option(0.904, "weight of the L1 cycle loss (thesis: equal to reconstruction)", low=0.0)
    adv_weight: float = option(0.052, "weight of the non-saturating GAN loss (thesis: 0.052)", low=0.0)
    cls_weight: float = option(0.044, "weight of the quadrant classifier loss (thesis: 0.044)", low=0.0)
    generator_lr: float = option(2e-4, "Adam learning rate of the encoder and decoder (thesis: 2e-4)", low=0.0)
    discriminator_lr: float = option(4e-4, "Adam learning rate of the discriminator and quadrant classifier "
                                           "(thesis: 4e-4)", low=0.0)
    beta1: float = option(0.5, "Adam beta1", low=0.0, high=1.0)
    generator_steps: int = option(2, "generator updates per iteration (thesis: 2)", low=1)


# --- the method ---------------------------------------------------------------------------------------------

class MixingMethod(Method):
    name = "mixing"
    title = "Quadrant mixing (LORBMS)"
    config_class = MixingConfig
    needs_labels = False
    train_defaults: ClassVar[dict[str, int]] = {"steps": 5000, "batch": 12}

    def __init__(self, config: MixingConfig, context: MethodContext) -> None:
        super().__init__(config, context)
        res, grid = context.resolution, config.latent_grid
        if grid not in (2, 4, 8) or res % grid or res // grid < 2 or (res // grid) & (res // grid - 1):
            raise StudioError(f"latent_grid={grid} does not fit {res}-pixel images: the image size divided by the "
                              "grid must be a power of two of at least 2")
        self.downs = int(math.log2(res // grid))
        half = grid // 2
        shape = (config.chunk_channels,) if half == 1 else (config.chunk_channels, half, half)
        self._slots = [SlotSpec(q, shape, None, q.replace("_", " ")) for q in QUADRANTS]
        self.encoder = QuadrantEncoder(config, self.downs)
        self.decoder = QuadrantDecoder(config, self.downs, self.encoder.block_channels)
        self.discriminator = PatchCritic(3, config.disc_width, patch_layers(res, config.disc_layers), slope=0.2,
                                         spectral_norm=config.spectral_norm)
        self.quadrant_classifier = QuadrantClassifier(config.classifier_width, res)
        self.candidate_store = CandidateStore()
        self.candidates: CandidateTable | None = None
        self._data = None
        self._pool_key = 0

    # --- slots --------------------------------------------------------------------------------
    @property
    def slots(self) -> list[SlotSpec]:
        return list(self._slots)

    def quadrant_masks(self, device: torch.device | str) -> Tensor:
        """(4, 1, 1, g, g): 1 on each quadrant's cells of the latent grid."""
        g, h = self.config.latent_grid, self.config.latent_grid // 2
        masks = torch.zeros(len(QUADRANTS), 1, 1, g, g, device=device)
        for q, (r, c) in enumerate([(0, 0), (0, h), (h, 0), (h, h)]):
            masks[q, ..., r:r + h, c:c + h] = 1.0
        return masks

    def split_grid(self, grid: Tensor) -> Latents:
        h = self.config.latent_grid // 2
        parts = quadrant_crops(grid)
        return {q: (p.reshape(p.shape[0], -1) if h == 1 else p) for q, p in zip(QUADRANTS, parts)}

    def join_grid(self, latents: Latents) -> Tensor:
        h = self.config.latent_grid // 2
        c = self.config.chunk_channels
        p = [latents[q].reshape(-1, c, h, h) for q in QUADRANTS]
        return torch.cat([torch.cat([p[0], p[1]], dim=3), torch.cat([p[2], p[3]], dim=3)], dim=2)

    def encode(self, images: Tensor) -> Latents:
        return self.split_grid(self.encoder(images))

    def decode(self, latents: Latents) -> Tensor:
        return self.decoder(self.join_grid(latents))

    # --- mixing in latent space ----------------------------------------------------------------
    def mix_grids(self, ref: Tensor, cands: Tensor, mask: Tensor) -> Tensor:
        """Replace the masked quadrants of ``ref`` (B, C, g, g) by the same quadrant of ``cands`` (B, 4, C, g, g)."""
        weights = self.quadrant_masks(ref.device) * mask.float().t()[:, :, None, None, None]  # (4, B, 1, g, g)
        taken = weights.sum(dim=0)
        return ref * (1.0 - taken) + (weights * cands.transpose(0, 1)).sum(dim=0)

    def classify_quadrants(self, mix: Tensor, cands: Tensor) -> Tensor:
        """Logits (B, 4 candidates, 4 quadrants) for every (mix, candidate) pair."""
        b, n = cands.shape[:2]
        logits = self.quadrant_classifier(mix.repeat_interleave(n, dim=0), cands.flatten(0, 1))
        return logits.view(b, n, len(QUADRANTS))

    def quadrant_features(self, images: Tensor, batch: int = 256) -> Tensor:
        """The model's own quadrant codes, flattened: (4, N, d); used to refresh the candidates."""
        parts = []
        with torch.no_grad():
            for start in range(0, images.shape[0], batch):
                z = self.encode(images[start:start + batch])
                parts.append(torch.stack([z[q].flatten(1) for q in QUADRANTS]))
        return torch.cat(parts, dim=1)

    # --- candidates ---------------------------------------------------------------------------
    def on_train_start(self, data) -> None:
        """Take the candidates saved with the weights when they were made for this very pool (a resumed run);
        otherwise start from pixel PCA."""
        self._data = data
        self._pool_key = pool_key(data)
        if self.config.mixing:
            table = self.candidate_store.get(self._pool_key)
            self._use(table if table is not None else self._pixel_candidates(data))

    def _use(self, table: CandidateTable) -> None:
        if len(table.eligible) == 0:
            raise StudioError(f"no training image has a replacement candidate within the mixing threshold "
                              f"{table.threshold:.4g} ({table.source} features); raise --threshold or set it to 0 "
                              "to use --threshold-quantile")
        self.candidates = table
        self.candidate_store.put(table, self._pool_key)

    def _pool_images(self, data) -> Tensor:
        pool = data.train_indices
        return torch.cat([data.images(pool[s:s + 512]) for s in range(0, len(pool), 512)])

    def _pixel_candidates(self, data) -> CandidateTable:
        c = self.config
        feats = pixel_quadrant_features(self._pool_images(data), c.pca_components)
        return build_candidates(feats, c.neighbours, c.threshold, c.threshold_quantile, "pixel PCA")

    def refresh_candidates(self) -> None:
        """Recompute candidates from the model's own quadrant codes of every training image."""
        if self._data is None:
            return
        c = self.config
        was_training = self.training
        self.eval()
        feats = self.quadrant_features(self._pool_images(self._data))
        self.train(was_training)
        self._use(build_candidates(feats, c.neighbours, c.threshold, c.threshold_quantile, "encoder"))

    # --- training -----------------------------------------------------------------------------
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        gen = [*self.encoder.parameters(), *self.decoder.parameters()]
        disc = [*self.discriminator.parameters(), *self.quadrant_classifier.parameters()]
        return {"generator": adam(gen, lr=c.generator_lr, betas=(c.beta1, 0.999)),
                "discriminator": adam(disc, lr=c.discriminator_lr, betas=(c.beta1, 0.999))}

    def sample_batch(self, data, rng: np.random.Generator, batch_size: int) -> Batch:
        pool = data.train_indices
        if not self.config.mixing:
            refs = rng.integers(0, len(pool), size=batch_size)
            return {"ref_positions": refs, "ref": data.images(pool[refs])}
        if self.candidates is None:
            self.on_train_start(data)
        table = self.candidates
        assert table is not None
        eligible = table.eligible
        refs = eligible[rng.integers(0, len(eligible), size=batch_size)]
        cands, mask = draw_mixes(table, refs, rng)
        wanted = np.concatenate([refs, cands.reshape(-1)])
        unique, inverse = np.unique(wanted, return_inverse=True)
        images = data.images(pool[unique])
        ref_img = images[inverse[:batch_size]]
        cand_img = images[inverse[batch_size:]].view(batch_size, len(QUADRANTS), *images.shape[1:])
        dev = data.device
        return {"ref_positions": refs, "cand_positions": cands, "ref": ref_img, "cands": cand_img,
                "mask": torch.as_tensor(mask, device=dev),
                "targets": torch.as_tensor(pair_targets(refs, cands, mask), device=dev)}

    def _generator_pass(self, batch: Batch) -> dict[str, Tensor]:
        """One forward pass of the autoencoder over a batch: reconstruction, mix, cycle and their losses."""
        c = self.config
        ref = batch["ref"]
        b = ref.shape[0]
        if not c.mixing:
            recon = self.decoder(self.encoder(ref))
            rec = F.l1_loss(recon.float(), ref.float())
            return {"total": c.rec_weight * rec, "rec": rec}
        cands, mask = batch["cands"], batch["mask"]
        z = self.encoder(torch.cat([ref, cands.flatten(0, 1)]))
        z_ref, z_cand = z[:b], z[b:].view(b, len(QUADRANTS), *z.shape[1:])
        z_mix = self.mix_grids(z_ref, z_cand, mask)
        out = self.decoder(torch.cat([z_ref, z_mix]))
        recon, mix = out[:b], out[b:]
        # cycle: re-encode the mix, put the reference's own chunks back where the mix replaced them
        z_back = self.mix_grids(self.encoder(mix), z_ref[:, None].expand_as(z_cand), mask)
        cycle = self.decoder(z_back)
        rec = F.l1_loss(recon.float(), ref.float())
        cyc = F.l1_loss(cycle.float(), ref.float())
        adv = nonsaturating_generator_loss(self.discriminator(mix).float())
        cls = F.binary_cross_entropy_with_logits(self.classify_quadrants(mix, cands).float(), batch["targets"])
        total = c.rec_weight * rec + c.cycle_weight * cyc + c.adv_weight * adv + c.cls_weight * cls
        return {"total": total, "rec": rec, "cycle": cyc, "adv": adv, "cls": cls, "mix": mix}

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer], step: int,
                      ctx: StepContext) -> dict[str, float]:
        c = self.config
        if c.mixing and c.refresh_every and step > 0 and step % c.refresh_every == 0:
            self.refresh_candidates()
        figures: dict[str, Tensor] = {}
        for g in range(c.generator_steps):
            with frozen(self.discriminator, self.quadrant_classifier), ctx.autocast():
                out = self._generator_pass(batch)
            ctx.step(out["total"], optimizers["generator"])
            if g == 0 and c.mixing:
                figures.update(self._discriminator_step(batch, out["mix"].detach(), optimizers, ctx))
        figures.update({k: v for k, v in out.items() if k not in ("mix", "total")})
        figures["loss"] = out["total"]
        return {k: float(v.detach()) for k, v in figures.items()}

    def _discriminator_step(self, batch: Batch, mix: Tensor, optimizers: dict[str, torch.optim.Optimizer],
                            ctx: StepContext) -> dict[str, Tensor]:
        """Discriminator (real reference vs mix) and quadrant classifier, on a mix the generator cannot change."""
        with ctx.autocast():
            d_loss = nonsaturating_discriminator_loss(self.discriminator(batch["ref"]).float(),
                                                      self.discriminator(mix).float())
            logits = self.classify_quadrants(mix, batch["cands"]).float()
            cls = F.binary_cross_entropy_with_logits(logits, batch["targets"])
        ctx.step(d_loss + cls, optimizers["discriminator"])
        mask_hit = ((logits.diagonal(dim1=1, dim2=2) > 0) == batch["mask"]).all(dim=1).float().mean()
        return {"disc": d_loss, "cls_train": cls, "mask_acc": mask_hit}

    def sample_grid(self, data, rng: np.random.Generator) -> Tensor:
        """Rows: references, reconstructions; with mixing also the quadrant mosaic the mix aims at and the mix.
        Runs in eval mode so that drawing samples never moves the spectral-norm estimates training relies on."""
        n = min(8, len(data.train_indices))
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                if not self.config.mixing or self.candidates is None:
                    ref = data.images(rng.choice(data.train_indices, size=n, replace=False))
                    return torch.stack([ref, self.decoder(self.encoder(ref)).clamp(-1, 1)])
                batch = self.sample_batch(data, rng, n)
                ref, cands, mask = batch["ref"], batch["cands"], batch["mask"]
                z_ref = self.encoder(ref)
                z_cand = self.encoder(cands.flatten(0, 1)).view(n, len(QUADRANTS), *z_ref.shape[1:])
                recon = self.decoder(z_ref)
                mix = self.decoder(self.mix_grids(z_ref, z_cand, mask))
        finally:
            self.train(was_training)
        return torch.stack([ref, recon.clamp(-1, 1), pixel_mosaic(ref, cands, mask), mix.clamp(-1, 1)])
