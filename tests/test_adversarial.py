"""The adversarial method (paper 004): slots, shuffle bookkeeping, its losses, a tiny real training run, the
service composing its checkpoints (mixtures included) and its evaluations."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.data.schema import AttributeSchema
from studio.data.spec import open_dataset
from studio.data.splits import ZeroShotSplit
from studio.errors import StudioError
from studio.methods.adversarial import RESIDUAL, AdversarialConfig, AdversarialMethod, shuffle_codes
from studio.methods.base import MethodContext, StepContext
from studio.training.data import TrainingData, to_uint8

SPEC = "fonts:tiny,res=16"
TINY = {"encoder_width": 4, "decoder_width": 16, "residual_blocks": 1, "critic_width": 4, "critic_layers": 2}


@pytest.fixture(scope="module")
def dataset():
    return open_dataset(SPEC)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real adversarial model trained for 6 steps through the Trainer (checkpoints at 3 and 6)."""
    from studio.training.trainer import Trainer, TrainSettings

    out = tmp_path_factory.mktemp("adversarial_run")
    settings = TrainSettings(method="adversarial", dataset=SPEC, out=out, steps=6, batch=8, device="cpu",
                             checkpoint_every=3, sample_every=3, log_every=3, method_options=dict(TINY))
    Trainer(settings).run()
    return out


def tiny_method(dataset, **options) -> AdversarialMethod:
    torch.manual_seed(0)
    return AdversarialMethod(AdversarialConfig(**{**TINY, **options}), MethodContext(dataset.schema, 16, 10))


def test_slots_are_the_attributes_plus_a_residual(dataset) -> None:
    spatial = tiny_method(dataset)
    assert [s.name for s in spatial.slots] == [*dataset.schema.names, RESIDUAL]
    assert [s.attribute for s in spatial.slots] == [*dataset.schema.names, None]
    assert all(s.shape == (16, 4, 4) and s.spatial for s in spatial.slots)
    vector = tiny_method(dataset, code_kind="vector", vector_size=5)
    assert all(s.shape == (5,) for s in vector.slots)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    for method in (spatial, vector):
        z = method.encode(x)
        assert {k: tuple(v.shape[1:]) for k, v in z.items()} == {s.name: s.shape for s in method.slots}
        y = method.decode(z).detach()
        assert y.shape == x.shape and float(y.abs().max()) <= 1.0


def test_unlabelled_data_and_clashing_names_are_refused() -> None:
    with pytest.raises(StudioError, match="needs attribute labels"):
        AdversarialMethod(AdversarialConfig(**TINY), MethodContext(AttributeSchema(()), 16))
    from studio.data.schema import Attribute

    clash = AttributeSchema((Attribute("residual", ("a", "b")),))
    with pytest.raises(StudioError, match="residual"):
        AdversarialMethod(AdversarialConfig(**TINY), MethodContext(clash, 16))


def test_shuffled_codes_carry_their_donors_labels() -> None:
    """Each item's code for attribute m is filled with its own label for m, so after shuffling the code read back
    must equal the label the synthesis is trained to show."""
    names = ["a", "b", "c"]
    rng = np.random.default_rng(3)
    labels = torch.as_tensor(rng.integers(0, 9, size=(6, 3)))
    codes = {n: labels[:, m].float().view(6, 1, 1, 1).expand(6, 2, 2, 2).clone() for m, n in enumerate(names)}
    codes[RESIDUAL] = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 2, 2, 2).clone()
    perms = torch.as_tensor(np.stack([rng.permutation(6) for _ in names]))
    shuffled, targets = shuffle_codes(codes, labels, perms, names)
    for m, n in enumerate(names):
        assert torch.equal(shuffled[n][:, 0, 0, 0].long(), targets[:, m])
        assert torch.equal(targets[:, m], labels[perms[m], m])
    assert torch.equal(shuffled[RESIDUAL], codes[RESIDUAL])
    assert not torch.equal(targets, labels)  # the permutations above do move labels


def test_sample_batch_draws_one_permutation_per_attribute(dataset) -> None:
    method = tiny_method(dataset)
    data = TrainingData(dataset, ZeroShotSplit.make(dataset.codes))
    batch = method.sample_batch(data, np.random.default_rng(0), 8)
    assert batch["images"].shape == (8, 3, 16, 16)
    assert batch["perms"].shape == (len(dataset.schema), 8)
    assert all(sorted(p.tolist()) == list(range(8)) for p in batch["perms"])
    assert torch.equal(batch["labels"], torch.as_tensor(dataset.codes[batch["indices"]].astype(np.int64)))
    assert set(batch["indices"]) <= set(data.train_indices.tolist())


def test_disentanglement_loss_is_log_k_when_classifiers_cannot_tell(dataset) -> None:
    """With zeroed dense layers every posterior is uniform: eq. 4 then averages log|m'| over the other attributes
    for each attribute code, and over all attributes for the residual."""
    method = tiny_method(dataset)
    for c in method.classifiers:
        torch.nn.init.zeros_(c.logits.weight)
        torch.nn.init.zeros_(c.logits.bias)
    logs = [math.log(k) for k in dataset.schema.cardinalities]
    per_code = [np.mean([v for j, v in enumerate(logs) if j != m]) for m in range(len(logs))] + [np.mean(logs)]
    z = method.encode(torch.rand(2, 3, 16, 16))
    assert method.disentanglement_loss(z).item() == pytest.approx(float(np.mean(per_code)), rel=1e-6)


@pytest.mark.parametrize("disentangle", [True, False])
def test_one_training_step_updates_every_network(dataset, disentangle: bool) -> None:
    method = tiny_method(dataset, disentangle=disentangle)
    data = TrainingData(dataset, ZeroShotSplit.make(dataset.codes))
    before = {k: v.clone() for k, v in method.state_dict().items()}
    losses = method.training_step(method.sample_batch(data, np.random.default_rng(1), 6), method.make_optimizers(),
                                  0, StepContext(torch.device("cpu")))
    assert all(math.isfinite(v) for v in losses.values())
    assert (losses["dis"] > 0) == disentangle
    after = method.state_dict()
    for part in ("encoders.0.", "encoders.5.", "decoder.", "classifiers.0.", "critic."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(part)), part


def test_tiny_run_writes_loadable_checkpoints(run_dir: Path, dataset) -> None:
    from studio.training.model_io import load_model

    loaded = load_model(run_dir / "checkpoints" / "last.safetensors")
    assert loaded.step == 6 and loaded.method.name == "adversarial"
    assert (run_dir / "checkpoints" / "step-00000003.safetensors").exists()
    assert (run_dir / "samples" / "step-00000006.png").exists()
    x = torch.as_tensor(dataset.images([0, 1]).astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1
    with torch.no_grad():
        y = loaded.method.decode(loaded.method.encode(x))
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_service_composes_spatial_slots_and_mixtures(run_dir: Path, tmp_path: Path) -> None:
    """A convex mixture of three items' letter codes (paper 004 eq. 11), the other slots from item 0, through the
    service, equals decoding the same mixture directly."""
    from studio.service.composition import Composition, ItemSource, MixtureSource, SlotValue
    from studio.service.model_service import ModelService
    from studio.training.model_io import load_model

    service = ModelService(device="cpu", cache_dir=tmp_path / "cache")
    try:
        service.load_checkpoint(run_dir / "checkpoints" / "last.safetensors")
        service.open_dataset(SPEC)
        mixture = MixtureSource(((ItemSource(1), 1.0), (ItemSource(2), 2.0), (ItemSource(3), 1.0)))
        comp = Composition({"letter": SlotValue(a=mixture)}, base=ItemSource(0))
        result = service.compose(comp)
    finally:
        service.shutdown()
    assert result.image.shape == (16, 16, 3) and result.image.dtype == np.uint8
    method = load_model(run_dir / "checkpoints" / "last.safetensors").method
    x = torch.as_tensor(open_dataset(SPEC).images([0, 1, 2, 3]).astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1
    with torch.no_grad():
        z = method.encode(x)
        latents = {k: v[:1] for k, v in z.items()}
        latents["letter"] = (0.25 * z["letter"][1] + 0.5 * z["letter"][2] + 0.25 * z["letter"][3])[None]
        expected = to_uint8(method.decode(latents))[0]
    assert np.abs(result.image.astype(int) - expected.astype(int)).max() <= 1
    assert result.latents["letter"].shape == (16 * 4 * 4,)


def test_code_entropy_evaluation(run_dir: Path) -> None:
    from studio.evaluation.suite import applicable, make_context, run_evaluations

    ctx = make_context(run_dir, device="cpu", max_items=20)
    names = [e.name for e in applicable(ctx.method)]
    assert {"code_entropy", "shuffled_synthesis", "zero_shot", "coprediction"} <= set(names)
    result = run_evaluations(ctx, only=["code_entropy"])["code_entropy"]
    assert result["slots"][-1] == RESIDUAL and len(result["entropy"]) == len(ctx.method.slots)
    assert all(0.0 <= v <= 1.0 + 1e-6 for row in result["entropy"] for v in row)
    # classifiers that cannot tell anything apart leave every code at exactly the maximal entropy
    for c in ctx.method.classifiers:
        torch.nn.init.zeros_(c.logits.weight)
        torch.nn.init.zeros_(c.logits.bias)
    flat = run_evaluations(ctx, only=["code_entropy"])["code_entropy"]
    assert flat["own_entropy"] == pytest.approx(1.0) and flat["other_entropy"] == pytest.approx(1.0)
    assert flat["residual_entropy"] == pytest.approx(1.0)


def test_judged_synthesis_with_a_real_image_classifier(run_dir: Path) -> None:
    from studio.evaluation.adversarial_eval import judged_synthesis
    from studio.evaluation.deae_eval import train_classifier
    from studio.evaluation.suite import make_context

    ctx = make_context(run_dir, device="cpu", max_items=16)
    train = ctx.split.train
    judge = train_classifier(ctx.dataset.images(train), ctx.dataset.codes[train], ctx.dataset.schema.cardinalities,
                             steps=5, batch=32, width=4)
    result = judged_synthesis(ctx, judge)
    assert set(result["per_attribute"]) == set(ctx.dataset.schema.names)
    for row in result["per_attribute"].values():
        assert all(row[k] is None or 0.0 <= row[k] <= 1.0 for k in row)
    items = ctx.subsample(ctx.split.test)
    assert result["n"] == len(items) == 16
