"""Oldfield, Panagakis & Nicolaou (paper 004): one encoder per labelled attribute plus a residual encoder, made
disentangled by classifiers that must recognise each code's own attribute and be left guessing (uniform posteriors)
about every other attribute, and made generalisable by decoding codes shuffled across the batch, which must be
classified with the donors' labels and look real to a WGAN-GP patch critic.

Slots are named after the attributes, plus ``residual``. Codes are spatial tensors as in the paper
(``code_kind=spatial``: (4 x encoder width, H/4, W/4)) or vectors (``code_kind=vector``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from studio.errors import StudioError
from studio.methods.base import Batch, Latents, Method, MethodContext, SlotSpec, StepContext
from studio.methods.blocks import NORMS, ResidualBlock, conv_norm_relu, upsample_norm_relu
from studio.methods.config import option
from studio.methods.losses import (
    PatchCritic,
    frozen,
    gradient_penalty,
    patch_layers,
    uniform_cross_entropy,
    wgan_critic_loss,
    wgan_generator_loss,
)
from studio.methods.optimizers import adam

RESIDUAL = "residual"


@dataclass
class AdversarialConfig:
    """Oldfield et al. hyper-parameters. Loss weights, optimiser and update ratio follow the paper and the authors'
    code; the network widths default to sizes that train Fonts on a laptop CPU (help texts give the paper's)."""

    code_kind: str = option("spatial", "spatial codes (as in the paper) or one vector per attribute",
                            choices=("spatial", "vector"))
    encoder_width: int = option(16, "channels of each encoder's first layer; spatial codes have 4x as many "
                                    "(paper: 32, codes of 128 channels)", low=2)
    vector_size: int = option(32, "length of each attribute's code when code_kind is vector", low=1)
    decoder_width: int = option(128, "channels of the decoder's residual blocks; 0 = (attributes + 1) x code "
                                     "channels, as in the paper", low=0)
    residual_blocks: int = option(3, "residual blocks at the start of the decoder (paper: 6)", low=0)
    norm: str = option("batch", "normalisation in the encoders and decoder (paper: instance; batch norm keeps "
                                "absolute colours and learns several times faster in short CPU runs)", choices=NORMS)
    critic_width: int = option(32, "channels of the patch critic's first layer, doubling per layer (paper: 64)",
                               low=1)
    critic_layers: int = option(6, "stride-2 layers of the patch critic (fewer on small images)", low=1)
    critic_steps: int = option(1, "critic updates per generator update (the authors' code: 1)", low=1)
    lr: float = option(1e-4, "Adam learning rate of the encoders/decoder, critic and classifiers", low=0.0)
    beta1: float = option(0.5, "Adam beta1", low=0.0, high=1.0)
    beta2: float = option(0.999, "Adam beta2", low=0.0, high=1.0)
    rec_weight: float = option(10.0, "weight of the L1 reconstruction loss (paper: 10)", low=0.0)
    code_cls_weight: float = option(1.0, "weight of classifying each code by its own attribute (eq. 3)", low=0.0)
    disentangle: bool = option(True, "use the disentanglement loss (eq. 4); off trains the paper's ablation baseline")
    dis_weight: float = option(1.0, "weight of the disentanglement loss (cross-entropy to uniform, eq. 4)", low=0.0)
    synth_weight: float = option(1.0, "weight of classifying shuffled syntheses with the donors' labels (eq. 6)",
                                 low=0.0)
    adv_weight: float = option(1.0, "weight of the WGAN generator loss on shuffled syntheses", low=0.0)
    gp_weight: float = option(10.0, "WGAN-GP gradient penalty weight (paper: 10)", low=0.0)


class AttributeEncoder(nn.Module):
    """Paper 004 Table I: 7x7 conv, two stride-2 3x3 convs, instance norm + ReLU (zero padding where the paper
    reflects); a vector code adds a linear map."""

    def __init__(self, width: int, resolution: int, vector_size: int | None, norm: str) -> None:
        super().__init__()
        self.trunk = nn.Sequential(conv_norm_relu(3, width, 7, 1, norm),
                                   conv_norm_relu(width, 2 * width, 3, 2, norm),
                                   conv_norm_relu(2 * width, 4 * width, 3, 2, norm))
        side = resolution // 4
        self.to_vector = nn.Linear(4 * width * side * side, vector_size) if vector_size else None

    def forward(self, images: Tensor) -> Tensor:
        z = self.trunk(images)
        return z if self.to_vector is None else self.to_vector(z.flatten(1))


class AttributeClassifier(nn.Module):
    """Paper 004 Table II: two stride-2 4x4 convs then one dense layer. The dense layer also takes a code directly,
    so one classifier scores both images and codes (the code has the shape of the convs' output)."""

    def __init__(self, width: int, resolution: int, classes: int, vector_size: int | None) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 2 * width, 4, 2, 1), nn.LeakyReLU(0.01),
                                   nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.LeakyReLU(0.01))
        side = resolution // 4
        flat = 4 * width * side * side
        self.to_vector = nn.Linear(flat, vector_size) if vector_size else None
        self.logits = nn.Linear(vector_size or flat, classes)

    def features(self, images: Tensor) -> Tensor:
        f = self.trunk(images)
        return f if self.to_vector is None else self.to_vector(f.flatten(1))

    def from_code(self, code: Tensor) -> Tensor:
        return self.logits(code.flatten(1))

    def forward(self, images: Tensor) -> Tensor:
        return self.from_code(self.features(images))


class CodeDecoder(nn.Module):
    """Concatenate the codes depth-wise, residual blocks, two resize-convolutions, 7x7 conv, tanh (Table I)."""

    def __init__(self, code_channels: int, n_codes: int, width: int, blocks: int, resolution: int,
                 vector_size: int | None, base_width: int, norm: str) -> None:
        super().__init__()
        side = resolution // 4
        self.side = side
        in_channels = code_channels * n_codes
        if vector_size:
            self.from_vectors: nn.Module | None = nn.Linear(vector_size * n_codes, code_channels * side * side)
            in_channels = code_channels
        else:
            self.from_vectors = None
        self.code_channels = code_channels
        self.project = nn.Identity() if in_channels == width else nn.Conv2d(in_channels, width, 1)
        self.blocks = nn.Sequential(*[ResidualBlock(width, norm) for _ in range(blocks)])
        self.up = nn.Sequential(
            upsample_norm_relu(width, 2 * base_width, norm, "resize"),
            upsample_norm_relu(2 * base_width, base_width, norm, "resize"),
            nn.Conv2d(base_width, 3, 7, padding=3), nn.Tanh())

    def forward(self, codes: list[Tensor]) -> Tensor:
        if self.from_vectors is not None:
            z = self.from_vectors(torch.cat([c.flatten(1) for c in codes], dim=1))
            z = F.relu(z).view(-1, self.code_channels, self.side, self.side)
        else:
            z = torch.cat(codes, dim=1)
        return self.up(self.blocks(self.project(z)))


def shuffle_codes(codes: Latents, labels: Tensor, perms: Tensor, attribute_slots: list[str]) -> tuple[Latents, Tensor]:
    """Give every attribute's code to another item of the batch (paper 004 eq. 5); ``perms[m][i]`` is the donor of
    attribute m for item i. Returns the shuffled codes and the labels the synthesis should carry (the donors').
    The residual code is never shuffled."""
    shuffled = dict(codes)
    targets = labels.clone()
    for m, name in enumerate(attribute_slots):
        shuffled[name] = codes[name][perms[m]]
        targets[:, m] = labels[perms[m], m]
    return shuffled, targets


class AdversarialMethod(Method):
    name = "adversarial"
    title = "Adversarial attribute codes (Oldfield et al.)"
    config_class = AdversarialConfig
    train_defaults: ClassVar[dict[str, int]] = {"steps": 5000, "batch": 16}

    def __init__(self, config: AdversarialConfig, context: MethodContext) -> None:
        super().__init__(config, context)
        schema = context.schema
        if len(schema) == 0:
            raise StudioError("the adversarial method needs attribute labels; this dataset has none "
                              "(use a labelled dataset, or the unsupervised 'mixing' method)")
        if RESIDUAL in schema.names:
            raise StudioError(f"an attribute is named {RESIDUAL!r}, which the adversarial method uses for its "
                              "residual code; rename that attribute")
        res = context.resolution
        if res % 4:
            raise StudioError(f"the adversarial method needs an image size divisible by 4, not {res}")
        if config.code_kind not in ("spatial", "vector"):
            raise StudioError(f"code_kind must be 'spatial' or 'vector', not {config.code_kind!r}")
        vector = config.vector_size if config.code_kind == "vector" else None
        width = config.encoder_width
        code_channels = 4 * width
        n_codes = len(schema) + 1
        self.attribute_names = list(schema.names)
        shape = (vector,) if vector else (code_channels, res // 4, res // 4)
        self._slots = [SlotSpec(a.name, shape, a.name, a.name.replace("_", " ")) for a in schema]
        self._slots.append(SlotSpec(RESIDUAL, shape, None, "residual"))
        if config.norm not in NORMS:
            raise StudioError(f"norm must be one of {', '.join(NORMS)}, not {config.norm!r}")
        self.encoders = nn.ModuleList([AttributeEncoder(width, res, vector, config.norm) for _ in range(n_codes)])
        dec_width = config.decoder_width or code_channels * n_codes
        self.decoder = CodeDecoder(code_channels, n_codes, dec_width, config.residual_blocks, res, vector, width,
                                   config.norm)
        self.classifiers = nn.ModuleList([AttributeClassifier(width, res, a.cardinality, vector) for a in schema])
        self.critic = PatchCritic(3, config.critic_width, patch_layers(res, config.critic_layers),
                                  max_width=config.critic_width * 32, slope=0.01)

    # --- slots --------------------------------------------------------------------------------
    @property
    def slots(self) -> list[SlotSpec]:
        return list(self._slots)

    def encode(self, images: Tensor) -> Latents:
        return {s.name: enc(images) for s, enc in zip(self._slots, self.encoders)}

    def decode(self, latents: Latents) -> Tensor:
        codes = [latents[s.name].reshape(-1, *s.shape) for s in self._slots]
        return self.decoder(codes)

    # --- classifiers, used by training and evaluation ---------------------------------------------
    def classify_images(self, images: Tensor) -> list[Tensor]:
        """Logits of every attribute's classifier on images, in schema order."""
        return [c(images) for c in self.classifiers]

    def classify_code(self, code: Tensor) -> list[Tensor]:
        """Logits of every attribute's classifier on one slot's code (any slot: all codes share one shape)."""
        return [c.from_code(code) for c in self.classifiers]

    def generator_parameters(self) -> list[nn.Parameter]:
        return [*self.encoders.parameters(), *self.decoder.parameters()]

    # --- training -----------------------------------------------------------------------------
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.beta1, c.beta2)
        return {"generator": adam(self.generator_parameters(), lr=c.lr, betas=betas),
                "critic": adam(self.critic.parameters(), lr=c.lr, betas=betas),
                "classifiers": adam(self.classifiers.parameters(), lr=c.lr, betas=betas)}

    def sample_batch(self, data, rng: np.random.Generator, batch_size: int) -> Batch:
        pool = data.train_indices
        idx = np.sort(rng.choice(pool, size=batch_size, replace=len(pool) < batch_size))
        perms = np.stack([rng.permutation(batch_size) for _ in self.attribute_names])
        return {"indices": idx, "images": data.images(idx), "labels": data.codes(idx).long(),
                "perms": torch.as_tensor(perms, dtype=torch.long, device=data.device)}

    def disentanglement_loss(self, codes: Latents) -> Tensor:
        """Eq. 4, averaged over the M + 1 codes: every other attribute's classifier should be uniform on a code,
        and every classifier on the residual code."""
        terms = []
        for s in self._slots:
            others = [uniform_cross_entropy(c.from_code(codes[s.name]))
                      for a, c in zip(self.attribute_names, self.classifiers) if a != s.attribute]
            if others:
                terms.append(torch.stack(others).mean())
        return torch.stack(terms).mean()

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer], step: int,
                      ctx: StepContext) -> dict[str, float]:
        c = self.config
        x, labels, perms = batch["images"], batch["labels"], batch["perms"]
        b = x.shape[0]
        with ctx.autocast():
            codes = self.encode(x)
            shuffled, targets = shuffle_codes(codes, labels, perms, self.attribute_names)
            both = {k: torch.cat([codes[k], shuffled[k]]) for k in codes}
            out = self.decode(both)
            recon, synth = out[:b], out[b:]

        # critic: real images against shuffled syntheses, with the gradient penalty
        fake = synth.detach()
        for _ in range(c.critic_steps):
            with ctx.autocast():
                wdist_loss = wgan_critic_loss(self.critic(x), self.critic(fake))
            gp = gradient_penalty(self.critic, x.float(), fake.float())
            ctx.step(wdist_loss + c.gp_weight * gp, optimizers["critic"])

        # classifiers learn the real images' labels (L_C)
        with ctx.autocast():
            real_logits = self.classify_images(x)
            cls_real = torch.stack([F.cross_entropy(lg.float(), labels[:, m])
                                    for m, lg in enumerate(real_logits)]).mean()
        ctx.step(cls_real, optimizers["classifiers"])
        acc_real = torch.stack([(lg.argmax(1) == labels[:, m]).float().mean()
                                for m, lg in enumerate(real_logits)]).mean()

        # encoders and decoder (L_G)
        with frozen(self.critic, self.classifiers), ctx.autocast():
            rec = F.l1_loss(recon.float(), x.float())
            code_cls = torch.stack([F.cross_entropy(cl.from_code(codes[a]).float(), labels[:, m])
                                    for m, (a, cl) in enumerate(zip(self.attribute_names, self.classifiers))]).mean()
            dis = self.disentanglement_loss(codes) if c.disentangle else torch.zeros((), device=x.device)
            synth_cls = torch.stack([F.cross_entropy(cl(synth).float(), targets[:, m])
                                     for m, cl in enumerate(self.classifiers)]).mean()
            adv = wgan_generator_loss(self.critic(synth).float())
            total = (c.rec_weight * rec + c.code_cls_weight * code_cls + c.synth_weight * synth_cls
                     + c.adv_weight * adv + (c.dis_weight * dis if c.disentangle else 0.0))
        ctx.step(total, optimizers["generator"])
        figures = {"loss": total, "rec": rec, "code_cls": code_cls, "dis": dis, "synth_cls": synth_cls, "adv": adv,
                   "critic": wdist_loss, "gp": gp, "cls_real": cls_real, "acc_real": acc_real}
        return {k: float(v.detach()) for k, v in figures.items()}

    def sample_grid(self, data, rng: np.random.Generator) -> Tensor:
        """Rows: inputs, reconstructions, then one row per attribute whose code comes from the next input.
        Runs in eval mode, so drawing samples never moves batch-norm statistics."""
        n = min(8, len(data.train_indices))
        idx = rng.choice(data.train_indices, size=n, replace=False)
        x = data.images(idx)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                codes = self.encode(x)
                rows = [x, self.decode(codes)]
                donor = torch.roll(torch.arange(n, device=x.device), -1)
                for a in self.attribute_names:
                    rows.append(self.decode({**codes, a: codes[a][donor]}))
        finally:
            self.train(was_training)
        return torch.stack([r.clamp(-1, 1) for r in rows])
