"""LORD (paper 001): both stages in one run, resume across the boundary, stage-2 encoders that reproduce the
stage-1 codes, the reconstruction-loss choice, evaluation, and composing through the service."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from studio.data.splits import ZeroShotSplit
from studio.errors import StudioError
from studio.methods.base import MethodContext, StepContext
from studio.methods.lord import CLASS_SLOT, CONTENT_SLOT, Lord, LordConfig
from studio.methods.perceptual import PixelLoss, VGGPerceptualLoss, cached_vgg_weights, make_reconstruction_loss
from studio.training.data import TrainingData
from studio.training.model_io import load_model
from studio.training.trainer import Trainer, TrainSettings

SPEC = "fonts:tiny,res=32"
SMALL = {"class_dim": 8, "content_dim": 8, "width": 8, "hidden": 32, "recon_loss": "pixel"}



def settings(out: Path, steps: int, stage1: int | None = None, stage2: int | None = None, **extra) -> TrainSettings:
    stages = {k: v for k, v in (("stage1_steps", stage1), ("stage2_steps", stage2)) if v is not None}
    options = {**SMALL, **stages, **extra}
    return TrainSettings(method="lord", dataset=SPEC, out=out, steps=steps, batch=16, device="cpu",
                         checkpoint_every=0, sample_every=0, log_every=1, amp=False, method_options=options)


def test_one_run_trains_both_stages_and_resumes_across_the_boundary(tmp_path: Path) -> None:
    straight = Trainer(settings(tmp_path / "straight", 10, 6, 4)).run()
    split_run = tmp_path / "split"
    first = Trainer(settings(split_run, 6, 6, 4)).run()
    stage1 = load_model(first.checkpoint)
    assert stage1.method.can_encode() is False
    with pytest.raises(StudioError, match="stage 2"):
        stage1.method.encode(torch.zeros(1, 3, 32, 32))
    again = settings(split_run, 10, 6, 4)
    again.resume = True
    Trainer(again).run()
    a, b = load_model(straight.checkpoint), load_model(split_run)
    assert a.method.can_encode() and b.method.can_encode()
    assert int(b.method.amortised_steps) == 4
    for (name, x), (_, y) in zip(a.method.state_dict().items(), b.method.state_dict().items()):
        assert torch.equal(x, y), f"{name} differs after resuming across the stage boundary"
    stages = (split_run / "metrics.jsonl").read_text().splitlines()
    assert '"stage": 1.0' in stages[0] and '"stage": 2.0' in stages[-1]


def test_checkpoint_records_the_class_attribute_and_the_loss_it_used(tmp_path: Path) -> None:
    options = {**SMALL, "recon_loss": "auto", "class_attribute": ""}
    s = TrainSettings(method="lord", dataset=SPEC, out=tmp_path / "run", steps=2, batch=8, device="cpu",
                      checkpoint_every=0, sample_every=0, amp=False,
                      method_options={**options, "stage1_steps": 1, "stage2_steps": 1})
    loaded = load_model(Trainer(s).run().checkpoint)
    expected = "vgg" if cached_vgg_weights() is not None else "pixel"
    assert loaded.meta["config"]["recon_loss"] == expected
    assert loaded.meta["config"]["class_attribute"] == "letter"
    assert [sl["name"] for sl in loaded.meta["slots"]] == [CLASS_SLOT, CONTENT_SLOT]
    assert loaded.meta["slots"][0]["attribute"] == "letter"


def test_unknown_class_attribute_is_a_user_error(tiny_fonts) -> None:
    with pytest.raises(StudioError, match="not an attribute"):
        Lord(LordConfig(class_attribute="mood"), MethodContext(tiny_fonts.schema, 32, 10))


def test_stage2_encoders_reproduce_stage1_codes(tmp_path: Path, tiny_fonts) -> None:
    run = Trainer(settings(tmp_path / "run", 140, 40, 100, lr=1e-3)).run()
    lord = load_model(run.checkpoint).method
    assert isinstance(lord, Lord)
    split = ZeroShotSplit.make(tiny_fonts.codes, 0.25, 0)
    data = TrainingData(tiny_fonts, split)
    items = split.train
    positions = torch.as_tensor(data.train_position(items))
    classes = data.codes(items)[:, lord.class_position].long()
    with torch.no_grad():
        target = lord.stage1_codes(positions, classes)
        encoded = lord.encode(data.images(items))
        fresh = Lord(lord.config, lord.context)
        fresh.load_state_dict({k: v for k, v in lord.state_dict().items() if "encoder" not in k}, strict=False)
        untrained = fresh.class_encoder(data.images(items)), fresh.content_encoder(data.images(items))
    for slot, baseline in zip((CLASS_SLOT, CONTENT_SLOT), untrained):
        own = (encoded[slot] - target[slot]).pow(2).sum(1)
        shuffled = (encoded[slot] - target[slot][torch.randperm(len(items))]).pow(2).sum(1)
        fresh_err = (baseline - target[slot]).pow(2).sum(1)
        # Each image's own code, not just any code of the right scale (measured: own/shuffled ~0.1 for the
        # class, ~0.4 for content after 100 stage-2 steps; an untrained encoder is more than 10x further off).
        assert own.mean() < 0.7 * shuffled.mean(), slot
        assert own.mean() < 0.2 * fresh_err.mean(), slot


def test_stage2_noise_reaches_the_generator(tiny_fonts) -> None:
    split = ZeroShotSplit.make(tiny_fonts.codes, 0.25, 0)
    data = TrainingData(tiny_fonts, split)

    def recon_loss(noise: float, seed: int) -> float:
        torch.manual_seed(0)
        lord = Lord(LordConfig(**{**SMALL, "stage1_steps": 0, "stage2_noise": noise}),
                    MethodContext(tiny_fonts.schema, 32, len(split.train)))
        batch = lord.sample_batch(data, np.random.default_rng(0), 8)
        torch.manual_seed(seed)
        return lord.training_step(batch, lord.make_optimizers(), 0, StepContext(torch.device("cpu")))["recon"]

    assert recon_loss(0.0, 1) == recon_loss(0.0, 2)
    assert recon_loss(1.0, 1) != recon_loss(1.0, 2)


def test_pixel_loss_without_weights_and_vgg_loss_from_the_hub_cache(tmp_path: Path, tiny_fonts) -> None:
    from torchvision.models import VGG16_Weights, vgg16

    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        assert cached_vgg_weights() is None
        assert isinstance(make_reconstruction_loss("auto"), PixelLoss)
        with pytest.raises(StudioError, match="--recon-loss pixel"):
            make_reconstruction_loss("vgg")
        # A real VGG16 file (random weights: we never download) where torchvision would have cached it.
        folder = tmp_path / "hub" / "checkpoints"
        folder.mkdir(parents=True)
        torch.manual_seed(0)
        state = {f"features.{k}": v for k, v in vgg16(weights=None).features.state_dict().items()}
        torch.save(state, folder / Path(VGG16_Weights.IMAGENET1K_V1.url).name)
        assert cached_vgg_weights() is not None
        loss = make_reconstruction_loss("auto")
        assert isinstance(loss, VGGPerceptualLoss)
        x = torch.rand(2, 3, 32, 32) * 2 - 1
        y = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1).requires_grad_(True)
        value = loss(y, x)
        value.backward()
        assert value.item() > 0 and y.grad is not None and y.grad.abs().sum() > 0
        assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
        lord = Lord(LordConfig(**{**SMALL, "recon_loss": "auto"}), MethodContext(tiny_fonts.schema, 32, 4))
        assert lord.config.recon_loss == "vgg"
        assert not any("layers" in k for k in lord.state_dict())  # VGG weights never enter a checkpoint
    finally:
        torch.hub.set_dir(previous)


def test_evaluation_and_service_compose(tmp_path: Path, monkeypatch) -> None:
    from studio.evaluation.suite import make_context, run_evaluations
    from studio.service.composition import Composition, ItemSource, SlotValue
    from studio.service.model_service import ModelService

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    stage1_only = Trainer(settings(tmp_path / "s1", 20, 20, 10)).run()
    ctx = make_context(stage1_only.checkpoint, device="cpu", max_items=60)
    early = run_evaluations(ctx, ["lord_disentanglement"])["lord_disentanglement"]
    assert "cannot encode" in early["test_skipped"]
    assert 0.0 <= early["stage1"]["class_from_content"] <= 1.0
    assert early["stage1"]["class_from_class"] == pytest.approx(1.0)  # one code per class

    again = settings(tmp_path / "s1", 30, 20, 10)
    again.resume = True
    Trainer(again).run()
    ctx = make_context(tmp_path / "s1", device="cpu", max_items=60)
    results = run_evaluations(ctx, ["lord_disentanglement", "content_transfer"])
    test = results["lord_disentanglement"]["test"]
    assert test["class_from_content_chance"] == pytest.approx(1 / 5)
    assert len(test["from_class"]) == 5
    transfer = results["content_transfer"]
    assert transfer["n"] > 0 and 0 < transfer["mse"] < 1

    service = ModelService(device="cpu", cache_dir=tmp_path / "svc")
    try:
        info = service.load_checkpoint(tmp_path / "s1")
        assert info.can_encode and [s.name for s in info.slots] == [CLASS_SLOT, CONTENT_SLOT]
        comp = Composition({CLASS_SLOT: SlotValue(ItemSource(0)), CONTENT_SLOT: SlotValue(ItemSource(100))})
        result = service.compose(comp)
        assert result.image.shape == (32, 32, 3) and result.image.dtype == np.uint8
        other = service.compose(comp.with_slot(CLASS_SLOT, SlotValue(ItemSource(150))))
        assert not np.array_equal(result.image, other.image)
    finally:
        service.shutdown()


def test_a_folder_with_one_label_column_trains(tmp_path: Path, tiny_fonts) -> None:
    from studio.cli.augment import Synthesised, write_folder

    items = np.arange(0, len(tiny_fonts), 2)
    labels = [{"letter": tiny_fonts.values(int(i))["letter"]} for i in items]
    folder = write_folder(tmp_path / "letters", Synthesised(tiny_fonts.images(items), labels, []), ["letter"])
    s = TrainSettings(method="lord", dataset=str(folder), out=tmp_path / "run", steps=4, batch=8, device="cpu",
                      checkpoint_every=0, sample_every=0, amp=False,
                      method_options={**SMALL, "stage1_steps": 2, "stage2_steps": 2})
    loaded = load_model(Trainer(s).run().checkpoint)
    assert loaded.meta["config"]["class_attribute"] == "letter"
    assert loaded.method.can_encode()
    codes = loaded.method.encode(torch.zeros(2, 3, 32, 32))
    assert codes[CLASS_SLOT].shape == (2, 8) and codes[CONTENT_SLOT].shape == (2, 8)


def test_stage2_extras_train_and_resume_exactly(tmp_path: Path) -> None:
    """The stage-2 class critic on the content code has its own optimiser, saved and restored with the run; the
    swapped-class consistency term draws its classes from the run's random streams, and the denoised content
    table and subspace are recomputed from the loaded codes, so resuming stays exact."""
    extra = {"content_adversary": 1.0, "swap_consistency": 1.0, "content_target": "denoised", "class_recon": False}
    straight = Trainer(settings(tmp_path / "straight", 8, 3, 5, **extra)).run()
    split_run = tmp_path / "split"
    Trainer(settings(split_run, 5, 3, 5, **extra)).run()
    again = settings(split_run, 8, 3, 5, **extra)
    again.resume = True
    Trainer(again).run()
    a, b = load_model(straight.checkpoint), load_model(split_run)
    assert isinstance(a.method, Lord) and a.method.content_critic is not None
    for (name, x), (_, y) in zip(a.method.state_dict().items(), b.method.state_dict().items()):
        assert torch.equal(x, y), f"{name} differs after resuming"
    last = (split_run / "metrics.jsonl").read_text().splitlines()[-1]
    assert '"critic_ce"' in last and '"content_confusion"' in last and '"swap_consistency"' in last
    plain = Lord(LordConfig(**SMALL), MethodContext(a.method.context.schema, 32, 10))
    assert plain.content_critic is None and "critic" not in plain.make_optimizers()


@pytest.mark.parametrize(("frozen", "moving", "options"), [
    ("content_encoder.", "class_encoder.", {"content_recon": False, "content_weight": 0.0}),
    ("class_encoder.", "content_encoder.", {"class_recon": False, "class_weight": 0.0}),
])
def test_without_recon_an_encoder_learns_from_its_codes_alone(tiny_fonts, frozen: str, moving: str,
                                                              options: dict) -> None:
    """With --content-recon false (--class-recon false) and no code regression, a stage-2 step leaves that
    encoder untouched while the other one (reconstruction still reaches it) moves."""
    config = LordConfig(**SMALL, stage1_steps=0, **options)
    lord = Lord(config, MethodContext(tiny_fonts.schema, 32, len(tiny_fonts)))
    split = ZeroShotSplit.make(tiny_fonts.codes, 0.25, 0)
    data = TrainingData(tiny_fonts, split)
    batch = lord.sample_batch(data, np.random.default_rng(0), 8)
    before = {k: v.clone() for k, v in lord.state_dict().items()}
    lord.training_step(batch, lord.make_optimizers(), 0, StepContext(torch.device("cpu")))
    after = lord.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(frozen))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(moving))


def test_content_target_reconstruction_trains_the_content_encoder_without_the_codes(tiny_fonts) -> None:
    """With --content-target reconstruction the content encoder learns as stage 1 taught the codes (noisy code
    through the class embedding): the per-image codes and their weight play no part in its update."""
    split = ZeroShotSplit.make(tiny_fonts.codes, 0.25, 0)
    data = TrainingData(tiny_fonts, split)

    def one_step(content_weight: float) -> tuple[Lord, dict[str, float], dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        config = LordConfig(**SMALL, stage1_steps=0, content_recon=False, content_target="reconstruction",
                            content_weight=content_weight)
        lord = Lord(config, MethodContext(tiny_fonts.schema, 32, len(tiny_fonts)))
        before = {k: v.clone() for k, v in lord.state_dict().items()}
        batch = lord.sample_batch(data, np.random.default_rng(0), 8)
        torch.manual_seed(1)
        losses = lord.training_step(batch, lord.make_optimizers(), 0, StepContext(torch.device("cpu")))
        return lord, losses, before

    a, losses, before = one_step(0.0)
    b, _, _ = one_step(100.0)
    content = [k for k in before if k.startswith("content_encoder.")]
    assert "content_recon" in losses
    assert any(not torch.equal(before[k], a.state_dict()[k]) for k in content)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in content)


def test_denoised_content_target_keeps_the_strong_directions_and_drops_the_faint_ones(tiny_fonts) -> None:
    """The Wiener filter of the stage-1 codes: a direction whose spread is far above the content noise passes
    almost whole, one far below it is flattened to the mean, and stage 2 regresses this table."""
    config = LordConfig(**SMALL, stage1_steps=0, content_target="denoised", content_noise=1.0)
    lord = Lord(config, MethodContext(tiny_fonts.schema, 32, 400))
    generator = torch.Generator().manual_seed(0)
    strong = torch.randn(400, 1, generator=generator) * 10.0  # variance 100 >> noise^2 = 1
    faint = torch.randn(400, 1, generator=generator)
    strong, faint = strong - strong.mean(), faint - faint.mean()
    faint = faint - strong * (faint.T @ strong) / (strong.T @ strong)  # uncorrelated in-sample: two principal axes
    faint = 0.05 * faint / faint.std()  # variance 0.0025 << 1
    codes = torch.zeros(400, 8)
    codes[:, :1], codes[:, 1:2] = strong, faint
    with torch.no_grad():
        lord.content_codes.weight.copy_(codes + 3.0)
    denoised = lord.denoised_content_codes()
    centred = denoised - denoised.mean(dim=0)
    assert torch.allclose(denoised.mean(dim=0), codes.mean(dim=0) + 3.0, atol=1e-4)
    gain_strong = (centred[:, 0] @ strong[:, 0]) / strong[:, 0].pow(2).sum()
    assert 0.97 < gain_strong < 1.0
    assert centred[:, 1].abs().max() < 0.01 * faint.abs().max()
    # The encoded content code is confined to the one direction that passed the noise (here the first axis).
    axis = torch.zeros(8, 8)
    axis[0, 0] = 1.0
    assert torch.allclose(lord.content_projection, axis, atol=1e-5)
    with torch.no_grad():
        encoded = lord.encode_content(torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (4, 3, 32, 32)))
                                      .float())
    assert torch.allclose(encoded[:, 1:], lord.content_mean[1:].expand(4, -1), atol=1e-5)
    assert encoded[:, 0].std() > 0
    with torch.no_grad():  # new codes (a load, or training) give a new table
        lord.content_codes.weight.mul_(2.0)
    assert not torch.allclose(lord.denoised_content_codes(), denoised)

    split = ZeroShotSplit.make(tiny_fonts.codes, 0.25, 0)
    data = TrainingData(tiny_fonts, split)
    small = Lord(config, MethodContext(tiny_fonts.schema, 32, len(split.train)))
    with torch.no_grad():
        small.content_codes.weight.normal_(0.0, 0.5)
    batch = small.sample_batch(data, np.random.default_rng(0), 8)
    with torch.no_grad():
        encoded = small.content_encoder(batch["images"])
        raw = (encoded - small.content_codes(batch["positions"])).pow(2).mean()
        filtered = (encoded - small.denoised_content_codes()[batch["positions"]]).pow(2).mean()
    losses = small.training_step(batch, small.make_optimizers(), 0, StepContext(torch.device("cpu")))
    assert losses["content_code_err"] == pytest.approx(float(filtered), rel=1e-5)
    assert abs(float(raw) - float(filtered)) > 0.05


def test_a_denoised_checkpoint_encodes_in_its_subspace_through_the_service(tmp_path: Path, monkeypatch) -> None:
    """The cpu recipe's stage 2 (denoised target, both encoders by regression alone) saves its content subspace
    with the model: a loaded checkpoint's content codes lie in it, and the service composes with them."""
    from studio.service.composition import Composition, ItemSource, SlotValue
    from studio.service.model_service import ModelService

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    options = {**Lord.recipes["cpu"].options, "stage1_steps": 10, "stage2_steps": 4, "content_noise": 0.03,
               "denoise_min_gain": 0.5}
    run = Trainer(settings(tmp_path / "run", 14, **options)).run()
    lord = load_model(run.checkpoint).method
    assert isinstance(lord, Lord)
    rank = int(torch.linalg.matrix_rank(lord.content_projection))
    assert 0 < rank < SMALL["content_dim"]
    with torch.no_grad():
        content = lord.encode(torch.rand(6, 3, 32, 32) * 2 - 1)[CONTENT_SLOT] - lord.content_mean
    assert torch.allclose(content @ lord.content_projection, content, atol=1e-5)
    assert int(torch.linalg.matrix_rank(content, atol=1e-4)) <= rank

    service = ModelService(device="cpu", cache_dir=tmp_path / "svc")
    try:
        service.load_checkpoint(run.checkpoint)
        comp = Composition({CLASS_SLOT: SlotValue(ItemSource(0)), CONTENT_SLOT: SlotValue(ItemSource(100))})
        first = service.compose(comp)
        other = service.compose(comp.with_slot(CLASS_SLOT, SlotValue(ItemSource(150))))
        assert first.image.shape == (32, 32, 3) and not np.array_equal(first.image, other.image)
    finally:
        service.shutdown()
