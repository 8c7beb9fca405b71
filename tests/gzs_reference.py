"""GZS-Net's losses computed the way the public code runs them: one encoder call per group role and one decoder
call per swap. Same math as ``GZSNet.compute_losses`` on the same batch; kept for the equivalence test and the
throughput benchmark (it is the baseline the batched step is measured against), never used for training."""

from __future__ import annotations

import torch
from torch import Tensor

from studio.methods.base import Batch
from studio.methods.gzs import GZSNet


def unbatched_losses(model: GZSNet, batch: Batch) -> dict[str, Tensor]:
    c = model.config
    images = batch["images"]
    b, m = batch["items"].shape[0], model.num_attributes
    x = images.view(b, m + 2, *images.shape[1:])
    chunks = [torch.nonzero(model.chunk_mask[j]).flatten() for j in range(m)]
    roles = [model.encoder(x[:, r]) for r in range(m + 2)]  # centre, partner 1..m, cycle item
    centre, other = roles[0], roles[m + 1]

    def with_chunk(base: Tensor, donor: Tensor, j: int) -> Tensor:
        out = base.clone()
        out[:, chunks[j]] = donor[:, chunks[j]]
        return out

    losses: dict[str, Tensor] = {}
    if c.weight_reconstruction > 0:
        terms = [model.pixel_loss(model.decoder(roles[r]), x[:, r]) for r in range(m + 1)]
        losses["reconstruction"] = torch.stack(terms).mean()
    if c.weight_swap > 0:
        terms = []
        for j in range(m):
            partner = roles[1 + j]
            terms.append(model.pixel_loss(model.decoder(with_chunk(centre, partner, j)), x[:, 0]))
            terms.append(model.pixel_loss(model.decoder(with_chunk(partner, centre, j)), x[:, 1 + j]))
        losses["swap"] = torch.stack(terms).mean()
    if c.weight_composite > 0:
        composite = torch.cat([roles[1 + j][:, chunks[j]] for j in range(m)], dim=1)
        losses["composite"] = model.pixel_loss(model.decoder(composite), x[:, 0])
    if c.weight_cycle > 0:
        attribute = batch["cycle_attribute"].tolist()

        def swap_per_row(a: Tensor, bb: Tensor) -> Tensor:
            return torch.stack([with_chunk(a[i:i + 1], bb[i:i + 1], attribute[i])[0] for i in range(b)])

        x_a = model.decoder(swap_per_row(centre, other))
        x_b = model.decoder(swap_per_row(other, centre))
        z_a, z_b = model.encoder(x_a), model.encoder(x_b)
        back_a = model.decoder(swap_per_row(z_a, z_b))
        back_b = model.decoder(swap_per_row(z_b, z_a))
        losses["cycle"] = (model.pixel_loss(back_a, x[:, 0]) + model.pixel_loss(back_b, x[:, m + 1])) / 2
    weights = {"reconstruction": c.weight_reconstruction, "swap": c.weight_swap,
               "composite": c.weight_composite, "cycle": c.weight_cycle}
    total = sum(weights[k] * v for k, v in losses.items())
    return {"loss": total, **losses}
