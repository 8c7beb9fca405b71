"""GZS-Net's layered decoder, partial swaps and chunk agreement: shapes, range, determinism, checkpoint round
trip and exact resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from studio.data.splits import ZeroShotSplit
from studio.methods.base import MethodContext, StepContext
from studio.methods.gzs import GZSConfig, GZSNet
from studio.methods.layered_decoder import LayeredDecoder, coordinate_channels
from studio.training.data import TrainingData
from studio.training.model_io import load_model
from studio.training.trainer import Trainer, TrainSettings

LAYERED = {"width": 8, "hidden": 32, "decoder": "layered", "residual_blocks": 1, "norm": "none"}


@pytest.fixture(scope="module")
def data(tiny_fonts) -> TrainingData:
    return TrainingData(tiny_fonts, ZeroShotSplit.make(tiny_fonts.codes, 0.25, 0))


def make_model(data: TrainingData, seed: int = 0, **options) -> GZSNet:
    torch.manual_seed(seed)
    return GZSNet(GZSConfig(**{**LAYERED, **options}), MethodContext(data.schema, data.resolution,
                                                                     len(data.train_indices)))


@pytest.mark.parametrize(("resolution", "blocks"), [(32, 0), (64, 2)])
def test_layered_decoder_shapes_and_range(resolution, blocks):
    torch.manual_seed(0)
    decoder = LayeredDecoder(resolution, 12, width=4, hidden=16, residual_blocks=blocks)
    # Large latents push every sigmoid and tanh to its limits: the composite must still stay in [-1, 1].
    with torch.no_grad():
        y = decoder(torch.randn(3, 12) * 50)
    assert y.shape == (3, 3, resolution, resolution)
    assert float(y.abs().max()) <= 1.0


def test_coordinate_channels_span_the_map():
    c = coordinate_channels(4, 2, torch.zeros(1))
    assert c.shape == (2, 2, 4, 4)
    torch.testing.assert_close(c[0, 0, 0], torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0]))  # x along a row
    torch.testing.assert_close(c[0, 1, :, 0], torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0]))  # y down a column


def test_layered_decoder_starts_with_flat_layers():
    """Residuals start at zero, so each layer is one colour: the decoded image is a blend of exactly two colours
    through the mask, whatever the mask looks like."""
    torch.manual_seed(1)
    decoder = LayeredDecoder(32, 10, width=4, hidden=16)
    z = torch.randn(2, 10)
    y = decoder(z)
    front, back = torch.tanh(decoder.colours(z)).chunk(2, dim=1)
    alpha_times_diff = y - back[..., None, None]
    ratio = alpha_times_diff / (front - back)[..., None, None]
    # The same alpha in all three channels: the blend is along the line between the two colours.
    torch.testing.assert_close(ratio[:, 0], ratio[:, 1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ratio[:, 0], ratio[:, 2], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("texture", [0.0, 0.5])
def test_layer_texture_bounds_how_far_a_layer_departs_from_its_flat_colour(texture):
    """With the mask held at 1 the image is the front layer: tanh(flat + residual). A texture bound keeps the
    residual within +-texture of the flat colour however large the residual convolution's output; without one
    the residual is free (what let the full-Fonts model paint glyphs around its mask)."""
    torch.manual_seed(2)
    decoder = LayeredDecoder(32, 10, width=4, hidden=16, texture=texture)
    with torch.no_grad():
        decoder.alpha.weight.zero_()
        decoder.alpha.bias.fill_(30.0)  # alpha = 1: only the front layer shows
        decoder.residuals.weight.normal_(0.0, 20.0)
        z = torch.randn(4, 10)
        y = decoder(z)
        front_flat = decoder.colours(z)[:, :3, None, None]
    departure = (torch.atanh(y.clamp(-0.999999, 0.999999)) - front_flat).abs()
    if texture > 0:
        assert float(departure.max()) <= texture + 1e-3
        assert float(departure.max()) > 0.5 * texture  # the bound is reached, not a flat image
    else:
        assert float(departure.max()) > 1.0


def test_same_seed_same_network_and_output(data):
    x = data.images(data.train_indices[:4])
    a, b = make_model(data, seed=3).eval(), make_model(data, seed=3).eval()
    with torch.no_grad():
        torch.testing.assert_close(a.reconstruct(x), b.reconstruct(x), rtol=0, atol=0)
    c = make_model(data, seed=4).eval()
    with torch.no_grad():
        assert not torch.equal(a.reconstruct(x), c.reconstruct(x))


def test_partial_swaps_decode_only_the_drawn_partners(data):
    """swap_pairs=k draws k of the m partners per group; the swap term then scores 2k images per group, and
    with k = m it is the paper's full term."""
    model = make_model(data, swap_pairs=2)
    batch = model.sample_batch(data, np.random.default_rng(0), 3)
    chosen = batch["swap_attributes"]
    assert chosen.shape == (3, 2)
    assert all(len(set(row.tolist())) == 2 for row in chosen)  # two different partners per group
    full = make_model(data, swap_pairs=0)
    assert "swap_attributes" not in full.sample_batch(data, np.random.default_rng(0), 3)
    # Drawing every partner (in order) gives exactly the full term.
    m = model.num_attributes
    batch_all = dict(batch, swap_attributes=torch.arange(m).expand(3, m))
    with torch.no_grad():
        partial_all = model.compute_losses(batch_all)["swap"]
        plain = model.compute_losses({k: v for k, v in batch.items() if k != "swap_attributes"})["swap"]
    torch.testing.assert_close(partial_all, plain)


def test_chunk_agreement_is_zero_for_shared_chunks_and_scale_free(data):
    model = make_model(data, weight_agreement=1.0)
    m, d = model.num_attributes, model.latent_dim
    torch.manual_seed(0)
    group = torch.randn(6, m + 1, d)
    random_pairs = float(model.chunk_agreement(group))
    assert 0.5 < random_pairs < 1.5  # independent draws: about 1
    assert float(model.chunk_agreement(group * 100)) == pytest.approx(random_pairs, rel=1e-4)
    agreed = group.clone()
    for j in range(m):  # partner j copies the centre's chunk j
        agreed[:, 1 + j] = torch.where(model.chunk_mask[j], group[:, 0], group[:, 1 + j])
    assert float(model.chunk_agreement(agreed)) == pytest.approx(0.0, abs=1e-6)


def test_agreement_term_is_logged_weighted_and_learns(data):
    model = make_model(data, weight_agreement=0.5, swap_pairs=1, lr=2e-3)
    optimizers = model.make_optimizers()
    ctx = StepContext(torch.device("cpu"))
    rng = np.random.default_rng(0)
    history = [model.training_step(model.sample_batch(data, rng, 2), optimizers, i, ctx) for i in range(30)]
    assert {"reconstruction", "swap", "composite", "cycle", "agreement"} <= set(history[0])
    last = history[-1]
    total = sum(w * last[k] for k, w in [("reconstruction", 1), ("swap", 1), ("composite", 1), ("cycle", 1),
                                          ("agreement", 0.5)])
    assert last["loss"] == pytest.approx(total, rel=1e-4)
    # The pixel terms still learn beside it (the ratio itself moves slowly: it is scale-free by design).
    first, late = (np.mean([h["reconstruction"] for h in part]) for part in (history[:5], history[-5:]))
    assert late < 0.85 * first


def _settings(out: Path, steps: int, **kw) -> TrainSettings:
    options = {**LAYERED, "lr": 1e-3, "swap_pairs": 2, "weight_agreement": 0.5}
    base = {"method": "gzs", "dataset": "fonts:tiny,res=32", "out": out, "steps": steps, "batch": 2,
            "device": "cpu", "checkpoint_every": 0, "sample_every": 0, "log_every": 1, "method_options": options}
    return TrainSettings(**{**base, **kw})


def test_checkpoint_round_trip_and_exact_resume(tmp_path, data):
    straight = Trainer(_settings(tmp_path / "straight", 6)).run()
    interrupted = Trainer(_settings(tmp_path / "split", 6))
    interrupted.callbacks.on_progress = lambda event: event.step == 3 and interrupted.request_stop()
    assert interrupted.run().step == 3
    Trainer(_settings(tmp_path / "split", 6, resume=True)).run()
    a = load_model(straight.checkpoint)
    b = load_model(tmp_path / "split")
    assert a.method.config.decoder == "layered" and isinstance(a.method.decoder, LayeredDecoder)
    sa, sb = a.method.state_dict(), b.method.state_dict()
    assert sa.keys() == sb.keys()
    assert max(float((sa[k] - sb[k]).abs().max()) for k in sa) == 0.0
    x = data.images(data.train_indices[:3])
    with torch.no_grad():
        torch.testing.assert_close(a.method.reconstruct(x), b.method.reconstruct(x), rtol=0, atol=0)


def test_per_dimension_agreement_sees_a_faint_leak_the_chunk_ratio_misses(data):
    torch.manual_seed(1)
    chunk_scale = make_model(data, weight_agreement=1.0)
    per_dimension = make_model(data, weight_agreement=1.0, agreement_scale="dimension")
    m, d = chunk_scale.num_attributes, chunk_scale.latent_dim
    group = torch.randn(8, m + 1, d)
    for j in range(m):  # partner j shares chunk j with the centre ...
        group[:, 1 + j] = torch.where(chunk_scale.chunk_mask[j], group[:, 0], group[:, 1 + j])
    leak = chunk_scale.chunk_mask.float().argmax(dim=1)  # ... but for one faint dimension per chunk, drawn anew
    group[:, :, leak] = 0.05 * torch.randn(8, m + 1, m)
    assert float(chunk_scale.chunk_agreement(group)) < 2e-3
    sizes = chunk_scale.chunk_mask.sum(dim=1).float()
    expected = float((1.0 / sizes).mean())  # the leaking dimension disagrees like random pairs (ratio ~ 1)
    assert float(per_dimension.chunk_agreement(group)) == pytest.approx(expected, rel=0.5)
    assert float(per_dimension.chunk_agreement(group * 100)) == pytest.approx(
        float(per_dimension.chunk_agreement(group)), rel=1e-4)
