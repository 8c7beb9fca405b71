"""LORD (paper 001): class/content disentanglement by latent optimisation, then amortisation into encoders.

Stage 1 (section 3.1) learns one embedding per class and one per *training image* together with an AdaIN
generator; the content embeddings get Gaussian noise and an L2 activation decay, so class information is cheaper
to keep in the shared class code than in the noisy content code. Stage 2 (section 3.2) trains feed-forward class
and content encoders to reproduce the stage-1 codes while the generator is fine-tuned, so new images encode.

Stage 2's encoders see only the training images, and on held-out combinations they let some class information
back into the content code. Options of ours, all off by default (the paper's stage 2; the ``cpu`` recipe turns
on the first three), work against that: ``content_recon=False`` trains the content encoder by regression alone
(``class_recon=False`` the class encoder), ``content_target="denoised"`` has it regress only what stage 1's
content noise let through to the generator and confines its code to those directions,
``content_target="reconstruction"`` trains it as stage 1 trained the codes instead of regressing them,
``swap_consistency`` adds generated images of every content under another class (combinations the training set
lacks) with their known codes, and ``content_adversary`` adds a class critic on the content code. The README has
what each did on fonts:small.

One training run does both stages: the phase follows from the step (``step < stage1_steps`` is stage 1), so a run
resumes across the boundary without any extra state. Before stage 2 has trained, ``can_encode()`` is False.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from studio.errors import StudioError
from studio.methods.base import Batch, Latents, Method, MethodContext, SlotSpec, StepContext, TrainingRecipe
from studio.methods.blocks import ConvEncoder
from studio.methods.config import option
from studio.methods.losses import uniform_cross_entropy
from studio.methods.optimizers import adam
from studio.methods.perceptual import LOSS_KINDS, make_reconstruction_loss, resolve_loss_kind

if TYPE_CHECKING:
    from studio.training.data import TrainingData

CLASS_SLOT = "class"
CONTENT_SLOT = "content"


@dataclass
class LordConfig:
    """LORD hyper-parameters; defaults follow the paper and the official code (see each help text). For short
    CPU runs on Fonts, --width 16 --hidden 128 --lr 1e-3 --batch 32 train in minutes."""

    class_attribute: str = option("", "attribute whose values are the classes (empty: the dataset's first)")
    class_dim: int = option(256, "size of the class code (paper: 256)", low=1)
    content_dim: int = option(128, "size of the content code (paper: 128)", low=1)
    width: int = option(32, "channel width of the generator and encoders (the widest layer has 4x this)", low=4)
    hidden: int = option(256, "width of the fully connected layers", low=8)
    stage1_steps: int = option(6000, "latent optimisation steps (stage 1); later steps train the encoders", low=0)
    stage2_steps: int = option(3000, "amortisation steps (stage 2); a run of stage1+stage2 steps does both", low=0)
    content_noise: float = option(1.0, "std of the Gaussian noise added to content codes in stage 1 (paper: 1)",
                                  low=0.0)
    content_decay: float = option(1e-3, "L2 activation decay on content codes (paper: 1e-3)", low=0.0)
    lr: float = option(3e-4, "Adam learning rate of the generator and encoders (official code: 3e-4)", low=0.0)
    latent_lr_factor: float = option(10.0, "latent codes learn this many times faster than the generator", low=0.0)
    class_weight: float = option(10.0, "stage 2: weight of ||E_y(x) - e_y||^2 (paper eq. 8, alpha_1)", low=0.0)
    content_weight: float = option(10.0, "stage 2: weight of ||E_c(x) - c||^2 (paper eq. 8, alpha_2)", low=0.0)
    recon_loss: str = option("auto", "reconstruction loss: vgg perceptual (only with cached torchvision VGG "
                             "weights), pixel (L1 + SSIM), or auto", choices=LOSS_KINDS)
    ssim_weight: float = option(1.0, "weight of (1 - SSIM) in the pixel loss", low=0.0)
    stage2_noise: float = option(0.0, "std of Gaussian noise on the encoded content code before the generator in "
                                 "stage 2 (paper: 0). Measured on fonts:small: 1.0 moves the content into the class "
                                 "encoder instead of taking the class out of the content one", low=0.0)
    content_recon: bool = option(True, "stage 2: the reconstruction loss also trains the content encoder (paper); "
                                 "false: the content encoder only regresses the stage-1 codes")
    class_recon: bool = option(True, "stage 2: the reconstruction loss also trains the class encoder (paper); "
                               "false: the class encoder only regresses the class codes, so no content can creep "
                               "into the class code")
    content_adversary: float = option(0.0, "stage 2: weight of a class critic on the encoded content code, which "
                                      "the content encoder must leave guessing (cross-entropy to uniform, as paper "
                                      "004 eq. 4); 0: off (paper)", low=0.0)
    content_target: str = option("codes", "stage 2: what the content encoder learns from: the stage-1 codes "
                                 "(paper); denoised: the codes as the generator saw them through the content noise "
                                 "(each principal direction shrunk by var / (var + noise^2)), so the encoder is not "
                                 "asked to reproduce per-image detail the noise hid; or reconstruction as stage 1 "
                                 "trained the codes (noisy code through the image's class embedding, plus the "
                                 "activation decay)", choices=("codes", "denoised", "reconstruction"))
    denoise_min_gain: float = option(0.02, "content_target=denoised: principal directions whose gain var / (var + "
                                     "noise^2) is below this are left out of the content code altogether (the "
                                     "encoder's output is projected onto the rest; on fonts:small 0.02 kept 5 "
                                     "of 128, 0.05 kept 3 and less of the size)", low=0.0, high=1.0)
    swap_consistency: float = option(0.0, "stage 2: weight of a term that makes the encoders recover (e_a, c_i) from "
                                     "the generated G(e_a, c_i) for a random other class a, so they also see class/"
                                     "content combinations the training images lack; 0: off (paper)", low=0.0)


def _scalars(**values: Tensor | float) -> dict[str, float]:
    return {k: float(v.detach()) if isinstance(v, Tensor) else float(v) for k, v in values.items()}


class AdaIN(nn.Module):
    """Instance normalisation whose scale and shift come from the class code."""

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        x = F.instance_norm(x)
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class AdaINGenerator(nn.Module):
    """Paper 001, A.1: content -> 3 FC layers -> 4x4 map, then [upsample x2, conv3x3, LeakyReLU, AdaIN] per
    doubling up to the resolution, conv5x5, conv7x7; AdaIN parameters come from the class code. tanh replaces
    the paper's sigmoid because our images live in [-1, 1]."""

    def __init__(self, class_dim: int, content_dim: int, resolution: int, width: int, hidden: int) -> None:
        super().__init__()
        ups = round(math.log2(resolution / 4))
        if 4 * 2**ups != resolution or ups < 1:
            raise StudioError(f"LORD's generator needs a power-of-two resolution of at least 8 px, got {resolution}")
        chans = [max(width, (4 * width) >> i) for i in range(ups + 1)]
        self.start = chans[0]
        self.content_fc = nn.Sequential(
            nn.Linear(content_dim, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 16 * chans[0]), nn.LeakyReLU(0.2),
        )
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1) for i in range(ups))
        self.adain = AdaIN()
        self.adain_sizes = chans[1:]
        self.modulation = nn.Sequential(nn.Linear(class_dim, hidden), nn.LeakyReLU(0.2),
                                        nn.Linear(hidden, 2 * sum(self.adain_sizes)))
        self.head = nn.Sequential(nn.Conv2d(chans[-1], chans[-1], 5, padding=2), nn.LeakyReLU(0.2),
                                  nn.Conv2d(chans[-1], 3, 7, padding=3), nn.Tanh())

    def forward(self, class_code: Tensor, content_code: Tensor) -> Tensor:
        h = self.content_fc(content_code).view(-1, self.start, 4, 4)
        params = torch.split(self.modulation(class_code), [2 * c for c in self.adain_sizes], dim=1)
        for conv, p in zip(self.convs, params):
            h = F.leaky_relu(conv(F.interpolate(h, scale_factor=2.0, mode="nearest")), 0.2)
            gamma, beta = p.chunk(2, dim=1)
            h = self.adain(h, gamma, beta)
        return self.head(h)


class Lord(Method):
    """Slots ``class`` (one learned code per class) and ``content`` (everything else about the image)."""

    name = "lord"
    title = "LORD (class / content)"
    config_class = LordConfig
    #: ``studio train`` defaults: both stages at their default lengths, and a batch in the paper's range.
    train_defaults = {"steps": 9000, "batch": 64}
    #: Measured on fonts:small,res=32 on one core of the 2-core VM (README, "Methods side by side").
    recipes: ClassVar[dict[str, TrainingRecipe]] = {"cpu": TrainingRecipe(
        summary="a 20-minute CPU run: shorter stages, and a stage 2 whose encoders only regress the stage-1 codes "
                "(the content code the denoised ones, in the directions the noise let through), which keeps the "
                "class out of the content code on new images",
        settings={"steps": 2200, "batch": 64},
        options={"stage1_steps": 1400, "stage2_steps": 800, "content_target": "denoised", "content_recon": False,
                 "class_recon": False})}

    def __init__(self, config: LordConfig, context: MethodContext) -> None:
        schema = context.schema
        if len(schema) == 0:
            raise StudioError("LORD needs a class label: the dataset has no attribute columns; add one (for a "
                              "folder, a column in attributes.csv)")
        attribute = config.class_attribute or schema.names[0]
        if attribute not in schema.names:
            raise StudioError(f"--class-attribute {attribute!r} is not an attribute of this dataset; choose one "
                              f"of {', '.join(schema.names)}")
        # The resolved attribute and loss go back into the config so the checkpoint records what was used.
        config = dataclasses.replace(config, class_attribute=attribute,
                                     recon_loss=resolve_loss_kind(config.recon_loss))
        super().__init__(config, context)
        self.class_position = schema.position(attribute)
        num_classes = schema[attribute].cardinality
        self.class_codes = nn.Embedding(num_classes, config.class_dim)
        self.content_codes = nn.Embedding(max(1, context.num_train_items), config.content_dim)
        nn.init.uniform_(self.class_codes.weight, -0.05, 0.05)  # as the official code
        nn.init.uniform_(self.content_codes.weight, -0.05, 0.05)
        res = context.resolution
        self.generator = AdaINGenerator(config.class_dim, config.content_dim, res, config.width, config.hidden)
        # Stage-2 encoders: the shared conv encoder (conv stem, three stride-2 convs, two FC layers).
        encoder = {"width": config.width, "hidden": config.hidden, "residual_blocks": 0, "kernel": 3}
        self.class_encoder = ConvEncoder(res, config.class_dim, **encoder)
        self.content_encoder = ConvEncoder(res, config.content_dim, **encoder)
        # Only with --content-adversary: a classifier that guesses the class from the encoded content code.
        self.content_critic = (nn.Sequential(nn.Linear(config.content_dim, config.hidden), nn.LeakyReLU(0.2),
                                             nn.Linear(config.hidden, num_classes))
                               if config.content_adversary > 0 else None)
        self.register_buffer("amortised_steps", torch.zeros((), dtype=torch.long))
        self._loss: list[nn.Module] = []  # kept out of the state dict: VGG weights are not part of the model
        # content_target="denoised": the filtered stage-1 codes, computed from the (then frozen) codes at the
        # first stage-2 step; a function of the checkpoint's codes, so a resumed run recomputes the same table.
        self._denoised: Tensor | None = None
        self._denoised_key: tuple[int, torch.device] | None = None
        if config.content_target == "denoised":
            # The subspace the encoded content code is confined to (mean + projection), set with the table above
            # and saved with the model, so a checkpoint encodes as it was trained.
            self.register_buffer("content_mean", torch.zeros(config.content_dim))
            self.register_buffer("content_projection", torch.eye(config.content_dim))

    # --- slots -----------------------------------------------------------------------------------
    @property
    def slots(self) -> list[SlotSpec]:
        return [SlotSpec(CLASS_SLOT, (self.config.class_dim,), self.config.class_attribute, "class"),
                SlotSpec(CONTENT_SLOT, (self.config.content_dim,), None, "content")]

    def can_encode(self) -> bool:
        return int(self.amortised_steps) > 0

    def encode(self, images: Tensor) -> Latents:
        if not self.can_encode():
            raise StudioError("this LORD model has not reached its amortisation stage (stage 2), so it cannot "
                              "encode images yet; train past --stage1-steps")
        return {CLASS_SLOT: self.class_encoder(images), CONTENT_SLOT: self.encode_content(images)}

    def encode_content(self, images: Tensor) -> Tensor:
        """The content encoder's code; with ``content_target="denoised"``, confined to the principal directions
        of the stage-1 codes that carried information through stage 1's noise."""
        code = self.content_encoder(images)
        if self.config.content_target != "denoised":
            return code
        mean = self.content_mean.to(code.dtype)
        return mean + (code - mean) @ self.content_projection.to(code.dtype)

    def decode(self, latents: Latents) -> Tensor:
        return self.generator(latents[CLASS_SLOT], latents[CONTENT_SLOT])

    def stage_of(self, step: int) -> int:
        return 1 if step < self.config.stage1_steps else 2

    def planned_steps(self) -> int:
        """Steps that run both stages in full."""
        return self.config.stage1_steps + self.config.stage2_steps

    def stage1_codes(self, positions: Tensor, classes: Tensor) -> Latents:
        """The latent-optimised codes of training items (by position in the training list) and their classes."""
        return {CLASS_SLOT: self.class_codes(classes), CONTENT_SLOT: self.content_codes(positions)}

    def denoised_content_codes(self) -> Tensor:
        """Stage-1 content codes as the generator could know them through the content noise: in the codes'
        principal directions, each coordinate shrunk by var / (var + noise^2) (the Wiener filter), and directions
        whose gain is below ``denoise_min_gain`` dropped (the encoded code is projected onto the others too).
        Stage 1 hides a code's small per-image wiggles under noise of std ``content_noise``, so the generator
        never used them; regressing them anyway makes the content encoder memorise single images, and what it
        memorises (the letter's shape, on Fonts) comes back on new images as class information in the content
        code, most of it in those faint directions."""
        weight = self.content_codes.weight
        key = (weight._version, weight.device)  # loading or training the codes changes the version
        if self._denoised is None or self._denoised_key != key:
            codes = weight.detach().float()
            mean = codes.mean(dim=0, keepdim=True)
            centred = codes - mean
            # Gram eigendecomposition on the CPU in float64: deterministic, so a resumed run gets the same table.
            covariance = (centred.T.double().cpu() @ centred.double().cpu()) / max(1, len(codes) - 1)
            variances, directions = torch.linalg.eigh(covariance)
            variances = variances.clamp_min(0)
            gain = variances / (variances + self.config.content_noise**2) if self.config.content_noise > 0 \
                else torch.ones_like(variances)
            kept = (gain >= self.config.denoise_min_gain) & (variances > 0)
            gain = torch.where(kept, gain, torch.zeros_like(gain))
            shrink = (directions * gain) @ directions.T
            self._denoised = mean + centred @ shrink.to(codes)
            self._denoised_key = key
            if hasattr(self, "content_projection"):
                with torch.no_grad():
                    self.content_mean.copy_(mean[0])
                    self.content_projection.copy_(((directions * kept) @ directions.T).to(codes))
        return self._denoised

    # --- training --------------------------------------------------------------------------------
    def reconstruction_loss(self, output: Tensor, target: Tensor) -> Tensor:
        if not self._loss:
            self._loss.append(make_reconstruction_loss(self.config.recon_loss, self.config.ssim_weight))
        loss = self._loss[0]
        if next(iter(loss.buffers()), output).device != output.device:
            loss.to(output.device)
        return loss(output, target)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        latent = adam([
            {"params": self.generator.parameters(), "lr": c.lr},
            {"params": [self.class_codes.weight, self.content_codes.weight], "lr": c.lr * c.latent_lr_factor},
        ])
        amortise = adam([
            {"params": [*self.class_encoder.parameters(), *self.content_encoder.parameters()], "lr": c.lr},
            {"params": self.generator.parameters(), "lr": c.lr},
        ])
        optimizers = {"latent": latent, "amortise": amortise}
        if self.content_critic is not None:
            optimizers["critic"] = adam(self.content_critic.parameters(), lr=c.lr)
        return optimizers

    def sample_batch(self, data: TrainingData, rng: np.random.Generator, batch_size: int) -> Batch:
        if data.dataset.schema.names != self.context.schema.names:
            raise StudioError("the dataset's attributes differ from the ones this LORD model was built for")
        idx = rng.choice(data.train_indices, size=min(batch_size, len(data.train_indices)), replace=False)
        positions = torch.as_tensor(data.train_position(idx), dtype=torch.long, device=data.device)
        return {"images": data.images(idx), "positions": positions,
                "classes": data.codes(idx)[:, self.class_position].long()}

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer], step: int,
                      ctx: StepContext) -> dict[str, float]:
        if self.stage_of(step) == 1:
            return self._latent_step(batch, optimizers["latent"], ctx)
        return self._amortise_step(batch, optimizers, ctx)

    def _latent_step(self, batch: Batch, optimizer: torch.optim.Optimizer, ctx: StepContext) -> dict[str, float]:
        """Paper 001 eq. 6: reconstruct from (class code, noisy content code) + lambda ||c||^2."""
        c = self.config
        codes = self.stage1_codes(batch["positions"], batch["classes"])
        content = codes[CONTENT_SLOT]
        with ctx.autocast():
            noisy = content + c.content_noise * torch.randn_like(content) if c.content_noise > 0 else content
            output = self.generator(codes[CLASS_SLOT], noisy)
        recon = self.reconstruction_loss(output.float(), batch["images"])
        decay = content.pow(2).sum(dim=1).mean()
        loss = recon + c.content_decay * decay
        ctx.step(loss, optimizer)
        return _scalars(loss=loss, recon=recon, content_decay=decay, stage=1.0)

    def _amortise_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer],
                       ctx: StepContext) -> dict[str, float]:
        """Paper 001 eq. 8: encoders regress the stage-1 codes while the generator keeps reconstructing. Our
        additions, off by default: ``content_target="denoised"`` regresses the Wiener-filtered codes instead;
        ``content_target="reconstruction"`` replaces the content regression by eq. 6 with the encoder in the
        code's place; ``swap_consistency`` also regresses the codes of generated
        class-swapped images; ``content_adversary`` first trains a critic on the (detached) content codes, then
        pushes the content encoder to leave it at chance."""
        c = self.config
        with torch.no_grad():
            target = self.stage1_codes(batch["positions"], batch["classes"])
            if c.content_target == "denoised":
                target[CONTENT_SLOT] = self.denoised_content_codes()[batch["positions"]]
        images = batch["images"]
        scalars: dict[str, Tensor | float] = {}
        swapped = self._swapped_class_images(batch["classes"], target, ctx) if c.swap_consistency > 0 else None
        inputs = images if swapped is None else torch.cat([images, swapped[0]])
        with ctx.autocast():
            class_all = self.class_encoder(inputs)
            content_all = self.encode_content(inputs)
        class_code, content_code = class_all[: len(images)], content_all[: len(images)]
        if self.content_critic is not None:
            critic_loss = F.cross_entropy(self.content_critic(content_code.detach().float()), batch["classes"])
            ctx.step(critic_loss, optimizers["critic"])
            scalars["critic_ce"] = critic_loss
        with ctx.autocast():
            into_generator = content_code if c.content_recon else content_code.detach()
            if c.stage2_noise > 0:
                into_generator = into_generator + c.stage2_noise * torch.randn_like(into_generator)
            output = self.generator(class_code if c.class_recon else class_code.detach(), into_generator)
        recon = self.reconstruction_loss(output.float(), images)
        class_err = (class_code.float() - target[CLASS_SLOT]).pow(2).mean()
        content_err = (content_code.float() - target[CONTENT_SLOT]).pow(2).mean()
        loss = recon + c.class_weight * class_err
        if c.content_target != "reconstruction":
            loss = loss + c.content_weight * content_err
        else:  # eq. 6 with the encoder in place of the per-image code: only what the class code lacks pays off
            with ctx.autocast():
                noisy = content_code + c.content_noise * torch.randn_like(content_code)
                amortised = self.generator(target[CLASS_SLOT], noisy)
            content_loss = (self.reconstruction_loss(amortised.float(), images)
                            + c.content_decay * content_code.float().pow(2).sum(dim=1).mean())
            loss = loss + content_loss
            scalars["content_recon"] = content_loss
        if swapped is not None:
            consistency = ((class_all[len(images):].float() - swapped[1]).pow(2).mean()
                           + (content_all[len(images):].float() - target[CONTENT_SLOT]).pow(2).mean())
            loss = loss + c.swap_consistency * consistency
            scalars["swap_consistency"] = consistency
        if self.content_critic is not None:
            confusion = uniform_cross_entropy(self.content_critic(content_code.float()))
            loss = loss + c.content_adversary * confusion
            scalars["content_confusion"] = confusion
        ctx.step(loss, optimizers["amortise"])
        self.amortised_steps += 1
        return _scalars(loss=loss, recon=recon, class_code_err=class_err, content_code_err=content_err,
                        **scalars, stage=2.0)

    def _swapped_class_images(self, classes: Tensor, target: Latents,
                              ctx: StepContext) -> tuple[Tensor, Tensor] | None:
        """G(e_a, c_i) for a random class a other than each item's own, with e_a; None with a single class."""
        count = self.class_codes.num_embeddings
        if count < 2:
            return None
        others = (classes + torch.randint(1, count, classes.shape, device=classes.device)) % count
        with torch.no_grad():
            class_codes = self.class_codes(others)
            with ctx.autocast():
                images = self.generator(class_codes, target[CONTENT_SLOT])
        return images.float(), class_codes

    def sample_grid(self, data: TrainingData, rng: np.random.Generator) -> Tensor:
        """Inputs, reconstructions, and class transfer (class of the next column, content of this one); from
        the stage-1 codes until the encoders have trained."""
        idx = rng.choice(data.train_indices, size=min(8, len(data.train_indices)), replace=False)
        x = data.images(idx)
        with torch.no_grad():
            if self.can_encode():
                codes = self.encode(x)
            else:
                positions = torch.as_tensor(data.train_position(idx), dtype=torch.long, device=x.device)
                codes = self.stage1_codes(positions, data.codes(idx)[:, self.class_position].long())
            recon = self.decode(codes)
            shifted = {CLASS_SLOT: codes[CLASS_SLOT].roll(1, dims=0), CONTENT_SLOT: codes[CONTENT_SLOT]}
            transfer = self.decode(shifted)
        return torch.cat([x, recon.clamp(-1, 1), transfer.clamp(-1, 1)])
