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
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from studio.errors import StudioError
from studio.methods.base import Batch, Latents, Method, MethodContext, SlotSpec, StepContext
from studio.methods.blocks import NORMS, make_norm
from studio.methods.config import option
from studio.methods.losses import (
    PatchCritic,
    frozen,
    nonsaturating_discriminator_loss,
    nonsaturating_generator_loss,
    patch_layers,
)
from studio.methods.optimizers import adam

QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")


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


# --- replacement candidates and the mixing rule (pure functions, used by training and evaluation) --------------

def quadrant_crops(images: Tensor) -> list[Tensor]:
    """(B, C, H, W) -> the four quadrants, in QUADRANTS order."""
    h, w = images.shape[-2] // 2, images.shape[-1] // 2
    return [images[..., :h, :w], images[..., :h, w:], images[..., h:, :w], images[..., h:, w:]]


def pca_project(features: Tensor, components: int) -> Tensor:
    """Centre (N, d) features and keep their top principal components (deterministic: eigenvectors of the
    covariance, signs fixed)."""
    x = features.double() - features.double().mean(dim=0, keepdim=True)
    cov = x.T @ x / max(1, x.shape[0] - 1)
    values, vectors = torch.linalg.eigh(cov)
    k = min(components, vectors.shape[1])
    top = vectors[:, torch.argsort(values, descending=True)[:k]]
    top = top * torch.sign(top[top.abs().argmax(dim=0), torch.arange(k)])
    return (x @ top).float()


def pixel_quadrant_features(images: Tensor, components: int, side: int = 8) -> Tensor:
    """Per quadrant, pixels pooled to side x side and reduced by PCA: (4, N, components)."""
    out = []
    for crop in quadrant_crops(images.float()):
        pooled = F.adaptive_avg_pool2d(crop, min(side, crop.shape[-1])).flatten(1)
        out.append(pca_project(pooled, components))
    return torch.stack(out)


def nearest_neighbours(features: Tensor, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest other rows of (N, d) ``features`` by L2 distance: indices and distances (N, k), nearest first."""
    n = features.shape[0]
    if n < 2:
        raise StudioError("mixing needs at least two training images to find replacement candidates")
    k = min(k, n - 1)
    feats = features.float()
    idx, dist = [], []
    for start in range(0, n, chunk):
        d = torch.cdist(feats[start:start + chunk], feats)
        rows = torch.arange(start, min(n, start + chunk))
        d[rows - start, rows] = math.inf
        values, order = torch.topk(d, k, dim=1, largest=False)
        idx.append(order)
        dist.append(values)
    return torch.cat(idx).cpu().numpy().astype(np.int64), torch.cat(dist).cpu().numpy().astype(np.float32)


@dataclass
class CandidateTable:
    """Replacement candidates for a pool of images: ``index[q, i]`` are the pool positions of the nearest
    neighbours of image i's quadrant q, ``distance[q, i]`` their distances; ``threshold`` is the farthest a used
    replacement may be."""

    index: np.ndarray
    distance: np.ndarray
    threshold: float
    source: str

    @property
    def eligible(self) -> np.ndarray:
        """Pool positions that have at least one candidate within the threshold (only these can be mixed)."""
        return np.flatnonzero((self.distance <= self.threshold).any(axis=(0, 2)))


def build_candidates(features: Tensor, k: int, threshold: float, quantile: float, source: str) -> CandidateTable:
    """Candidates from per-quadrant features (4, N, d); a zero ``threshold`` takes the ``quantile`` of all distances."""
    tables = [nearest_neighbours(features[q], k) for q in range(len(QUADRANTS))]
    index = np.stack([t[0] for t in tables])
    distance = np.stack([t[1] for t in tables])
    tau = float(threshold) if threshold > 0 else float(np.quantile(distance, quantile))
    return CandidateTable(index, distance, tau, source)


def draw_mix(table: CandidateTable, ref: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The thesis' mixing rule for one reference: one candidate per quadrant drawn uniformly from its list; a
    quadrant is replaced when its candidate is within the threshold; if all four would be, the farthest is kept; if
    none would be, the nearest admissible candidate of any quadrant replaces its quadrant.

    Returns candidate pool positions (4,) and the replacement mask (4,) bool, with 1 to 3 quadrants replaced.
    Raises ValueError for a reference that has no candidate within the threshold at all.
    """
    k = table.index.shape[2]
    pick = rng.integers(0, k, size=len(QUADRANTS))
    quads = np.arange(len(QUADRANTS))
    cands = table.index[quads, ref, pick].copy()
    dists = table.distance[quads, ref, pick]
    mask = dists <= table.threshold
    if mask.all():
        mask[int(np.argmax(dists))] = False
    if not mask.any():
        flat = table.distance[:, ref, :]
        q, j = np.unravel_index(int(np.argmin(flat)), flat.shape)
        if flat[q, j] > table.threshold:
            raise ValueError(f"pool item {ref} has no replacement candidate within the threshold")
        cands[q] = table.index[q, ref, j]
        mask[q] = True
    return cands, mask


def draw_mixes(table: CandidateTable, refs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``draw_mix`` for a batch of references: candidates (B, 4) and masks (B, 4)."""
    pairs = [draw_mix(table, int(r), rng) for r in refs]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def pair_targets(refs: np.ndarray, cands: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Ground truth of the quadrant classifier: ``[b, j, i]`` is 1 when quadrant i of mix b came from candidate j's
    image (the thesis' Cls(I_mix, I_qj), four binary outputs per pair). Shape (B, 4, 4)."""
    source = np.where(mask, cands, refs[:, None])
    return (source[:, None, :] == cands[:, :, None]).astype(np.float32)


SOURCES = ("", "pixel PCA", "encoder")


def pool_key(data) -> int:
    """A number that names the training pool (dataset pixels and labels, and which items train)."""
    h = hashlib.sha256(data.dataset.fingerprint.encode())
    h.update(np.ascontiguousarray(data.train_indices, dtype=np.int64).tobytes())
    return int.from_bytes(h.digest()[:8], "little", signed=True)


class CandidateStore(nn.Module):
    """The candidate table as buffers, saved with the weights, so that a resumed run mixes exactly as the
    uninterrupted run would have (the encoder-made table cannot be recomputed once the encoder has moved on).
    ``pool_key`` says which training pool the table belongs to; its buffers take whatever size a checkpoint has."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("index", torch.zeros(len(QUADRANTS), 0, 0, dtype=torch.int32))
        self.register_buffer("distance", torch.zeros(len(QUADRANTS), 0, 0))
        self.register_buffer("threshold", torch.zeros(()))
        self.register_buffer("source", torch.zeros((), dtype=torch.int64))
        self.register_buffer("pool_key", torch.zeros((), dtype=torch.int64))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[override]
        for name in ("index", "distance"):
            incoming = state_dict.get(prefix + name)
            if incoming is not None and incoming.shape != self._buffers[name].shape:
                old = self._buffers[name]
                self._buffers[name] = torch.zeros(incoming.shape, dtype=old.dtype, device=old.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def put(self, table: CandidateTable, key: int) -> None:
        dev = self.threshold.device
        self.index = torch.as_tensor(table.index, dtype=torch.int32, device=dev)
        self.distance = torch.as_tensor(table.distance, dtype=torch.float32, device=dev)
        self.threshold.fill_(table.threshold)
        self.source.fill_(SOURCES.index(table.source))
        self.pool_key.fill_(key)

    def get(self, key: int) -> CandidateTable | None:
        if int(self.source) == 0 or int(self.pool_key) != key or self.index.numel() == 0:
            return None
        return CandidateTable(self.index.cpu().numpy().astype(np.int64), self.distance.cpu().numpy(),
                              float(self.threshold), SOURCES[int(self.source)])


# --- networks ------------------------------------------------------------------------------------------------

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


def pixel_mosaic(ref: Tensor, cands: Tensor, mask: Tensor) -> Tensor:
    """The reference with its replaced quadrants pasted, pixel for pixel, from the candidates."""
    out = ref.clone()
    h, w = ref.shape[-2] // 2, ref.shape[-1] // 2
    for q, (r, c) in enumerate([(0, 0), (0, w), (h, 0), (h, w)]):
        rows = mask[:, q].nonzero().flatten()
        out[rows, :, r:r + h, c:c + w] = cands[rows, q, :, r:r + h, c:c + w]
    return out
