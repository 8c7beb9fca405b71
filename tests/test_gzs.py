"""GZS-Net: slots, shapes, the batched losses against the one-call-per-role reference, and that it learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gzs_reference import unbatched_losses

from studio.data.splits import ZeroShotSplit
from studio.methods.base import MethodContext, StepContext
from studio.methods.gzs import CRITIC_LR_SCALE, LOSS_TERMS, GZSConfig, GZSNet, chunk_sizes, foreground
from studio.methods.registry import get_method
from studio.training.data import TrainingData

TINY = {"width": 8, "hidden": 32}



@pytest.fixture(scope="module")
def data(tiny_fonts) -> TrainingData:
    return TrainingData(tiny_fonts, ZeroShotSplit.make(tiny_fonts.codes, 0.25, 0))


def make_model(data: TrainingData, **options) -> GZSNet:
    torch.manual_seed(0)
    config = GZSConfig(**{**TINY, **options})
    return GZSNet(config, MethodContext(data.schema, data.resolution, len(data.train_indices)))


def test_registered_under_its_name():
    assert get_method("gzs") is GZSNet


def test_slots_are_the_attributes_with_an_even_split(data):
    model = make_model(data)
    assert [s.name for s in model.slots] == data.schema.names
    assert [s.attribute for s in model.slots] == data.schema.names
    assert [s.shape for s in model.slots] == [(20,)] * 5


def test_uneven_and_explicit_chunk_sizes():
    assert chunk_sizes(GZSConfig(latent_dim=12), 5) == [3, 3, 2, 2, 2]
    assert chunk_sizes(GZSConfig(latent_sizes=(4, 1, 2, 2, 8)), 5) == [4, 1, 2, 2, 8]
    with pytest.raises(ValueError, match="5 positive sizes"):
        chunk_sizes(GZSConfig(latent_sizes=(4, 4)), 5)


@pytest.mark.parametrize("norm", ["instance", "group", "none"])
def test_encode_decode_shapes_and_range(data, norm):
    model = make_model(data, norm=norm, upsample="resize" if norm == "group" else "deconv").eval()
    x = data.images(data.train_indices[:3])
    with torch.no_grad():
        z = model.encode(x)
        y = model.decode(z)
    assert {k: tuple(v.shape) for k, v in z.items()} == {name: (3, 20) for name in data.schema.names}
    assert y.shape == x.shape
    assert float(y.abs().max()) <= 1.0


def test_batched_losses_equal_the_one_call_per_role_reference(data):
    model = make_model(data)
    batch = model.sample_batch(data, np.random.default_rng(3), 4)
    batched = model.compute_losses(batch)
    reference = unbatched_losses(model, batch)
    assert set(batched) == set(reference) == {"loss", "reconstruction", "swap", "composite", "cycle"}
    for name in batched:
        assert float(batched[name].detach()) == pytest.approx(float(reference[name].detach()), rel=1e-5), name


def test_batched_gradients_equal_the_reference(data):
    """In float64: instance norm over the tiny deepest maps amplifies float32 rounding (1% of a tensor's largest
    gradient on some CPUs' kernels), which would hide or fake a batching difference."""
    model = make_model(data, weight_cycle=0.5, weight_swap=2.0).double()
    batch = model.sample_batch(data, np.random.default_rng(4), 3)
    batch["images"] = batch["images"].double()
    model.compute_losses(batch)["loss"].backward()
    batched = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    unbatched_losses(model, batch)["loss"].backward()
    for got, want in zip(batched, (p.grad for p in model.parameters())):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()) + 1e-12)


@pytest.mark.parametrize("weights", [
    {"weight_reconstruction": 0.0, "weight_swap": 0.0, "weight_cycle": 0.0},
    {"weight_swap": 0.0, "weight_cycle": 0.0},
    {"weight_reconstruction": 0.0, "weight_swap": 0.0, "weight_composite": 0.0},
])
def test_encoding_only_the_read_columns_keeps_losses_and_gradients(data, weights):
    """With some terms off, the step encodes fewer images; its losses and gradients must not change."""
    model = make_model(data, **weights)
    batch = model.sample_batch(data, np.random.default_rng(5), 3)
    batched = model.compute_losses(batch)
    batched["loss"].backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    reference = unbatched_losses(model, batch)
    reference["loss"].backward()
    assert set(batched) == set(reference)
    for name in batched:
        assert float(batched[name].detach()) == pytest.approx(float(reference[name].detach()), rel=1e-5), name
    for g, p in zip(got, model.parameters()):
        want = p.grad if p.grad is not None else torch.zeros_like(g)
        torch.testing.assert_close(g, want, rtol=1e-3, atol=1e-6)


def test_zero_weights_drop_their_terms(data):
    model = make_model(data, weight_cycle=0.0, weight_composite=0.0)
    with torch.no_grad():
        losses = model.compute_losses(model.sample_batch(data, np.random.default_rng(0), 2))
    assert set(losses) == {"loss", "reconstruction", "swap"}
    assert float(losses["loss"]) == pytest.approx(float(losses["reconstruction"] + losses["swap"]), rel=1e-6)


def test_foreground_is_the_glyph_on_a_plain_ground():
    ground = torch.tensor([0.2, -0.6, 0.9])[:, None, None]
    images = ground.expand(3, 16, 16).clone()[None].repeat(2, 1, 1, 1)
    images[0, :, 4:9, 5:11] = torch.tensor([-1.0, 1.0, -1.0])[:, None, None]  # a glyph in another colour
    images[1, :, 3, 3] = ground[:, 0, 0] + 0.05  # a faint speck: a fraction of a foreground pixel
    mask = foreground(images)
    assert mask.shape == (2, 1, 16, 16)
    glyph = torch.zeros(16, 16, dtype=torch.bool)
    glyph[4:9, 5:11] = True
    assert torch.equal(mask[0, 0] > 0.99, glyph) and float(mask[0, 0][~glyph].abs().max()) == 0.0
    assert float(mask[0].sum()) == pytest.approx(30.0)
    assert float(mask[1, 0, 3, 3]) == pytest.approx(0.2, abs=1e-5) and float(mask[1].sum()) == pytest.approx(0.2)


def test_foreground_weight_makes_a_missed_glyph_cost_more(data):
    """A decoding that leaves the glyph out (draws the plain ground) costs 1 + W times as much on the glyph's
    pixels with the foreground weight, while a ground error costs as before."""
    target = torch.zeros(1, 3, 16, 16)
    target[..., 6:10, 6:10] = 1.0
    blank = torch.zeros_like(target)  # the glyph left out
    plain, weighted = make_model(data, pixel_loss="mse"), make_model(data, pixel_loss="mse", weight_foreground=4.0)
    assert float(weighted.pixel_loss(blank, target)) == pytest.approx(5.0 * float(plain.pixel_loss(blank, target)))
    off_ground = target.clone()
    off_ground[..., 0:2, :] += 0.1
    assert float(weighted.pixel_loss(off_ground, target)) == pytest.approx(float(plain.pixel_loss(off_ground,
                                                                                                  target)))


def test_chunk_labels_read_each_attribute_from_its_own_chunk(data):
    model = make_model(data, weight_labels=0.5)
    batch = model.sample_batch(data, np.random.default_rng(3), 2)
    m = model.num_attributes
    with torch.no_grad():
        losses = model.compute_losses(batch)
        z = model.encoder(batch["images"]).view(2, m + 2, -1)[:, :m + 1].reshape(-1, model.latent_dim)
        codes = data.codes(batch["items"][:, :m + 1].reshape(-1))
        want = torch.stack([torch.nn.functional.cross_entropy(model.label_heads[j](z[:, 20 * j:20 * (j + 1)]),
                                                               codes[:, j]) for j in range(m)]).mean()
    assert torch.equal(batch["codes"], codes)
    torch.testing.assert_close(losses["labels"], want)
    others = sum(v for k, v in losses.items() if k not in ("loss", "labels"))
    torch.testing.assert_close(losses["loss"], others + 0.5 * want)
    assert not hasattr(make_model(data), "label_heads")  # off by default: the paper's network, unchanged


def test_chunk_confusion_trains_critics_on_detached_chunks_and_the_encoder_on_frozen_critics(data):
    model = make_model(data, weight_confusion=1.0)
    batch = model.sample_batch(data, np.random.default_rng(4), 2)
    m = model.num_attributes
    counts = [len(a.values) for a in data.schema.attributes]
    assert [c[-1].out_features for c in model.chunk_critics] == [sum(counts) - counts[j] for j in range(m)]
    losses = model.compute_losses(batch)
    assert set(LOSS_TERMS) >= {"critics", "confusion"} and {"critics", "confusion"} <= set(losses)
    critic_params = list(model.chunk_critics.parameters())
    encoder_params = list(model.encoder.parameters())
    critic_grads = torch.autograd.grad(losses["critics"], critic_params + encoder_params, allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in critic_grads[:len(critic_params)])
    assert all(g is None or not g.any() for g in critic_grads[len(critic_params):])  # chunks were detached
    confusion_grads = torch.autograd.grad(losses["confusion"], critic_params + encoder_params, allow_unused=True)
    assert all(g is None or not g.any() for g in confusion_grads[:len(critic_params)])  # critics were frozen
    assert any(g is not None and g.abs().sum() > 0 for g in confusion_grads[len(critic_params):])
    # A critic that outputs equal logits is fully confused: the term is 0 there and positive otherwise.
    assert float(losses["confusion"].detach()) >= -1e-6
    for critic in model.chunk_critics:
        torch.nn.init.zeros_(critic[-1].weight)
        torch.nn.init.zeros_(critic[-1].bias)
    with torch.no_grad():
        assert abs(float(model.compute_losses(batch)["confusion"])) < 1e-5
    assert not hasattr(make_model(data), "chunk_critics")  # off by default
    groups = model.make_optimizers()["model"].param_groups
    assert [g["lr"] for g in groups] == [model.config.lr, model.config.lr * CRITIC_LR_SCALE]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.chunk_critics.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_chunk_critics_learn_to_read_a_leaking_chunk(data):
    """Latents whose every chunk spells out all the codes: the critics learn to read them (their loss falls far)
    and the confusion the encoder would pay grows."""
    model = make_model(data, weight_confusion=1.0)
    codes = data.codes(torch.arange(64))
    leaking = torch.cat([codes.float(), torch.zeros(64, model.latent_dim // model.num_attributes
                                                    - codes.shape[1])], dim=1)
    latents = leaking.repeat(1, model.num_attributes)
    optimizer = torch.optim.Adam(model.chunk_critics.parameters(), lr=1e-2)
    with torch.no_grad():
        first_critics, first_confusion = (float(v) for v in model.chunk_confusion(latents, codes))
    for _ in range(150):
        critics, _confusion = model.chunk_confusion(latents, codes)
        optimizer.zero_grad()
        critics.backward()
        optimizer.step()
    with torch.no_grad():
        critics, confusion = (float(v) for v in model.chunk_confusion(latents, codes))
    assert critics < 0.2 * first_critics
    assert confusion > first_confusion + 0.5


def test_latent_noise_and_activation_decay_regularise_training_only(data):
    """LORD's regulariser on every chunk: noise on what the decoder reads (training only, seeded), and the mean
    square of the latents as a loss term whose gradient reaches the encoder alone."""
    model = make_model(data, latent_noise=1.0, weight_activation=0.01)
    batch = model.sample_batch(data, np.random.default_rng(5), 2)
    m = model.num_attributes
    torch.manual_seed(1)
    first = model.compute_losses(batch)
    torch.manual_seed(1)
    again = model.compute_losses(batch)
    second = model.compute_losses(batch)  # fresh noise
    torch.testing.assert_close(first["reconstruction"], again["reconstruction"])
    assert not torch.equal(first["reconstruction"], second["reconstruction"])
    with torch.no_grad():
        z = model.encoder(batch["images"]).view(2, m + 2, -1)[:, :m + 1]
    torch.testing.assert_close(first["activation"], z.pow(2).mean())
    others = sum(v for k, v in first.items() if k not in ("loss", "activation"))
    torch.testing.assert_close(first["loss"], others + 0.01 * first["activation"])
    model.zero_grad()
    first["activation"].backward()
    assert all(p.grad is None or not p.grad.any() for p in model.decoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.encoder.parameters())
    # no noise at evaluation, and none at all by default
    model.eval()
    with torch.no_grad():
        torch.manual_seed(2)
        a = model.compute_losses(batch)["reconstruction"]
        b = model.compute_losses(batch)["reconstruction"]
    torch.testing.assert_close(a, b)
    plain = make_model(data)
    assert "activation" not in plain.compute_losses(batch)
    assert torch.equal(plain._noisy(z), z)


def test_swap_moves_exactly_one_chunk(data):
    """The swap term's latents: centre with partner j's chunk j, checked against a hand-built latent."""
    model = make_model(data).eval()
    batch = model.sample_batch(data, np.random.default_rng(1), 2)
    m = model.num_attributes
    with torch.no_grad():
        z = model.encoder(batch["images"]).view(2, m + 2, -1)
        j = 2
        expected = z[:, 0].clone()
        expected[:, 40:60] = z[:, 1 + j, 40:60]
        built = torch.where(model.chunk_mask[j], z[:, 1 + j], z[:, 0])
    torch.testing.assert_close(built, expected)


def test_loss_decreases_over_thirty_steps(data):
    model = make_model(data, lr=2e-3)
    optimizers = model.make_optimizers()
    ctx = StepContext(torch.device("cpu"))
    rng = np.random.default_rng(0)
    history = [model.training_step(model.sample_batch(data, rng, 2), optimizers, i, ctx)["loss"] for i in range(30)]
    assert np.mean(history[-5:]) < 0.8 * np.mean(history[:5])


def test_sample_grid_shows_groups_and_swaps(data):
    model = make_model(data)
    model.train()
    grid = model.sample_grid(data, np.random.default_rng(0))
    m = len(data.schema)
    assert grid.shape == (4, 2 * m + 4, 3, 32, 32)
    assert model.training  # put back in training mode
    groups = data.group_sampler.sample(4, np.random.default_rng(0)).groups
    torch.testing.assert_close(grid[:, 0], data.images(groups[:, 0]))
