"""The mixing method (paper 002): quadrant slots, candidates and the mixing rule, a tiny real training run on an
unlabelled folder, exact resume, the service composing quadrants, and its evaluations."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.data.spec import open_dataset
from studio.data.splits import ZeroShotSplit
from studio.methods.base import MethodContext, StepContext
from studio.methods.mixing import (
    QUADRANTS,
    CandidateTable,
    MixingConfig,
    MixingMethod,
    draw_mix,
    draw_mixes,
    nearest_neighbours,
    pair_targets,
    pixel_quadrant_features,
)
from studio.training.data import TrainingData, to_uint8

TINY = {"chunk_channels": 8, "stem_width": 4, "growth_rate": 4, "encoder_blocks": (1, 1, 1),
        "decoder_blocks": (1, 1, 1), "disc_width": 4, "classifier_width": 4, "pca_components": 8, "neighbours": 4}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """fonts:tiny at 16 px exported as a folder without labels: the spec of an unlabelled folder."""
    from studio.data.export import export_dataset

    path = export_dataset(open_dataset("fonts:tiny,res=16"), tmp_path_factory.mktemp("unlabelled") / "fonts",
                          labels=False, progress=False)
    return f"{path},res=16"


def train(spec: str, out: Path, steps: int, resume: bool = False, **options) -> Path:
    from studio.training.trainer import Trainer, TrainSettings

    settings = TrainSettings(method="mixing", dataset=spec, out=out, steps=steps, batch=4, device="cpu", seed=1,
                             resume=resume, checkpoint_every=3, sample_every=3, log_every=1,
                             method_options={**TINY, "refresh_every": 2, **options})
    Trainer(settings).run()
    return out / "checkpoints" / "last.safetensors"


@pytest.fixture(scope="module")
def checkpoint(folder: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real mixing model trained for 5 steps on the unlabelled folder; candidates refreshed at steps 2 and 4."""
    return train(folder, tmp_path_factory.mktemp("mixing_run"), 5)


def tiny_method(resolution: int = 16, **options) -> MixingMethod:
    torch.manual_seed(0)
    return MixingMethod(MixingConfig(**{**TINY, **options}), MethodContext(open_dataset("fonts:tiny,res=16").schema,
                                                                        resolution))


# --- slots and latent mixing --------------------------------------------------------------------------------
def test_quadrant_slots_round_trip_through_the_grid() -> None:
    method = tiny_method()
    assert [s.name for s in method.slots] == list(QUADRANTS)
    assert all(s.shape == (8,) and s.attribute is None for s in method.slots)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    grid = method.encoder(x)
    assert grid.shape == (2, 8, 2, 2)
    assert torch.equal(method.join_grid(method.split_grid(grid)), grid)
    assert torch.equal(method.encode(x)["bottom_left"], grid[:, :, 1, 0])
    assert method.decode(method.encode(x)).shape == x.shape
    finer = tiny_method(latent_grid=4)
    assert all(s.shape == (8, 2, 2) for s in finer.slots)
    g = finer.encoder(x)
    assert torch.equal(finer.join_grid(finer.split_grid(g)), g)
    assert torch.equal(finer.encode(x)["top_right"], g[:, :, :2, 2:])


def test_mix_grids_takes_replaced_quadrants_from_their_candidates() -> None:
    method = tiny_method(latent_grid=4)
    ref = torch.zeros(1, 8, 4, 4)
    cands = torch.stack([torch.full((8, 4, 4), q + 1.0) for q in range(4)])[None]
    mask = torch.tensor([[True, False, False, True]])
    mixed = method.mix_grids(ref, cands, mask)[0, 0]
    assert torch.equal(mixed[:2, :2], torch.full((2, 2), 1.0))  # top left from candidate 0
    assert torch.equal(mixed[:2, 2:], torch.zeros(2, 2))  # top right kept
    assert torch.equal(mixed[2:, :2], torch.zeros(2, 2))  # bottom left kept
    assert torch.equal(mixed[2:, 2:], torch.full((2, 2), 4.0))  # bottom right from candidate 3


# --- candidates and the mixing rule ---------------------------------------------------------------------------
def random_table(n: int = 30, k: int = 5, seed: int = 0) -> CandidateTable:
    rng = np.random.default_rng(seed)
    index = np.stack([np.stack([rng.choice(np.delete(np.arange(n), i), size=k, replace=False) for i in range(n)])
                      for _ in QUADRANTS])
    distance = np.sort(rng.gamma(2.0, 1.0, size=(4, n, k)), axis=2).astype(np.float32)
    distance[:, :3] += 100.0  # the first three items have no candidate within any sensible threshold
    return CandidateTable(index, distance, float(np.quantile(distance, 0.4)), "test")


def test_mixing_rule_invariants() -> None:
    table = random_table()
    rng = np.random.default_rng(1)
    eligible = set(table.eligible.tolist())
    assert eligible == {i for i in range(30) if (table.distance[:, i] <= table.threshold).any()}
    assert not {0, 1, 2} & eligible
    seen_counts = set()
    for ref in sorted(eligible):
        for _ in range(40):
            cands, mask = draw_mix(table, ref, rng)
            assert 1 <= mask.sum() <= 3
            seen_counts.add(int(mask.sum()))
            for q in np.flatnonzero(mask):
                j = int(np.flatnonzero(table.index[q, ref] == cands[q])[0])
                assert table.distance[q, ref, j] <= table.threshold
                assert cands[q] != ref
    assert seen_counts == {1, 2, 3}
    for ref in (0, 1, 2):
        with pytest.raises(ValueError, match="no replacement candidate"):
            draw_mix(table, ref, rng)


def test_mixing_rule_keeps_the_farthest_of_four_admissible_candidates() -> None:
    index = np.array([[[1]], [[2]], [[3]], [[4]]])
    distance = np.array([[[0.1]], [[0.4]], [[0.3]], [[0.2]]], dtype=np.float32)
    cands, mask = draw_mix(CandidateTable(index, distance, 1.0, "test"), 0, np.random.default_rng(0))
    assert mask.tolist() == [True, False, True, True]
    assert cands.tolist() == [1, 2, 3, 4]


def test_mixing_rule_falls_back_to_the_nearest_admissible_candidate() -> None:
    """Only candidate 1 of quadrant 2 is within the threshold: whichever candidates are drawn, that one replaces
    quadrant 2 and nothing else is replaced."""
    index = np.array([[[5, 6]], [[7, 8]], [[9, 10]], [[11, 12]]])
    distance = np.array([[[3.0, 4.0]], [[3.0, 5.0]], [[2.0, 0.5]], [[6.0, 7.0]]], dtype=np.float32)
    table = CandidateTable(index, distance, 1.0, "test")
    rng = np.random.default_rng(0)
    for _ in range(20):
        cands, mask = draw_mix(table, 0, rng)
        assert mask.tolist() == [False, False, True, False]
        assert cands[2] == 10


def test_pair_targets_mark_where_each_candidate_image_appears() -> None:
    refs = np.array([0])
    cands = np.array([[5, 6, 5, 7]])  # the same image is candidate for two quadrants
    mask = np.array([[True, False, True, False]])
    t = pair_targets(refs, cands, mask)[0]
    assert t[0].tolist() == [1, 0, 1, 0]  # image 5 shows in quadrants 0 and 2
    assert t[2].tolist() == [1, 0, 1, 0]
    assert t[1].tolist() == [0, 0, 0, 0]  # image 6 was drawn but not used
    assert t[3].tolist() == [0, 0, 0, 0]
    assert draw_mixes(random_table(), np.array([5, 6, 7]), np.random.default_rng(0))[0].shape == (3, 4)


def test_nearest_neighbours_match_brute_force() -> None:
    feats = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    idx, dist = nearest_neighbours(feats, 4, chunk=7)
    full = torch.cdist(feats, feats).fill_diagonal_(math.inf)
    want_dist, want_idx = torch.topk(full, 4, largest=False)
    assert np.array_equal(idx, want_idx.numpy())
    assert np.allclose(dist, want_dist.numpy(), atol=1e-5)
    assert not (idx == np.arange(50)[:, None]).any()


def test_pixel_features_find_a_copied_quadrant() -> None:
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    images[4, :, :8, 8:] = images[1, :, :8, 8:]  # item 4 shares item 1's top-right quadrant
    feats = pixel_quadrant_features(images, components=5)
    assert feats.shape == (4, 6, 5)
    idx, dist = nearest_neighbours(feats[1], 1)
    assert idx[1, 0] == 4 and idx[4, 0] == 1 and dist[1, 0] < 1e-3


# --- training ---------------------------------------------------------------------------------------------------
def test_autoencoder_baseline_trains_reconstruction_only() -> None:
    dataset = open_dataset("fonts:tiny,res=16")
    method = tiny_method(mixing=False)
    data = TrainingData(dataset, ZeroShotSplit.make(dataset.codes))
    method.on_train_start(data)
    assert method.candidates is None
    disc_before = {k: v.clone() for k, v in method.discriminator.state_dict().items()}
    enc_before = {k: v.clone() for k, v in method.encoder.state_dict().items()}
    losses = method.training_step(method.sample_batch(data, np.random.default_rng(0), 4), method.make_optimizers(),
                                  0, StepContext(torch.device("cpu")))
    assert set(losses) == {"rec", "loss"}
    assert all(torch.equal(v, method.discriminator.state_dict()[k]) for k, v in disc_before.items())
    assert any(not torch.equal(v, method.encoder.state_dict()[k]) for k, v in enc_before.items())


def test_tiny_run_on_an_unlabelled_folder(checkpoint: Path, folder: str) -> None:
    import json

    from studio.training.model_io import load_model

    loaded = load_model(checkpoint)
    method = loaded.method
    assert loaded.step == 5 and len(method.context.schema) == 0
    store = method.candidate_store
    assert int(store.source) == 2  # the last refresh (step 4) used the model's own encoder
    n_train = method.context.num_train_items
    assert tuple(store.index.shape) == (4, n_train, 4) and float(store.threshold) > 0
    lines = [json.loads(s) for s in (checkpoint.parent.parent / "metrics.jsonl").read_text().splitlines()]
    assert {"rec", "cycle", "adv", "cls", "disc", "cls_train", "mask_acc"} <= set(lines[-1]["losses"])
    assert all(math.isfinite(v) for line in lines for v in line["losses"].values())


def test_resume_mixes_exactly_as_the_uninterrupted_run(folder: str, tmp_path: Path) -> None:
    """Stopped at step 3 (after the step-2 refresh made encoder candidates) and resumed to 5: the candidates come
    back from the checkpoint, so the weights equal those of a straight run."""
    from studio.training.model_io import load_model

    straight = load_model(train(folder, tmp_path / "straight", 5)).method.state_dict()
    train(folder, tmp_path / "split", 3)
    resumed = load_model(train(folder, tmp_path / "split", 5, resume=True)).method.state_dict()
    assert straight.keys() == resumed.keys()
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


# --- service and evaluation --------------------------------------------------------------------------------------
def test_service_composes_quadrants_from_different_items(checkpoint: Path, folder: str, tmp_path: Path) -> None:
    from studio.service.composition import Composition, ItemSource, SlotValue
    from studio.service.model_service import ModelService
    from studio.training.model_io import load_model

    service = ModelService(device="cpu", cache_dir=tmp_path / "cache")
    try:
        info = service.load_checkpoint(checkpoint)
        assert [s.name for s in info.slots] == list(QUADRANTS)
        service.open_dataset(folder)
        comp = Composition({q: SlotValue(a=ItemSource(i)) for i, q in enumerate(QUADRANTS)})
        result = service.compose(comp)
    finally:
        service.shutdown()
    method = load_model(checkpoint).method
    x = torch.as_tensor(open_dataset(folder).images([0, 1, 2, 3]).astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1
    with torch.no_grad():
        z = method.encode(x)
        expected = to_uint8(method.decode({q: z[q][i:i + 1] for i, q in enumerate(QUADRANTS)}))[0]
    assert result.image.shape == (16, 16, 3)
    assert np.abs(result.image.astype(int) - expected.astype(int)).max() <= 1


def test_evaluations_on_unlabelled_and_labelled_data(checkpoint: Path) -> None:
    from studio.evaluation.suite import EvalContext, make_context, run_evaluations

    ctx = make_context(checkpoint, device="cpu", max_items=24)
    results = run_evaluations(ctx)     # everything `studio eval` runs: nothing may assume labels
    assert "zero_shot" not in results and "coprediction" not in results
    assert "no attribute labels" in results["linear_probe"]["skipped"]
    mix = results["quadrant_mixing"]
    assert 0.0 <= mix["mask_exact"] <= 1.0 and 0.0 <= mix["chance_bits"] <= 1.0
    assert set(mix["replaced_counts"]) <= {"1", "2", "3"}
    assert sum(mix["replaced_counts"].values()) == mix["n"]
    assert math.isfinite(mix["psnr_kept"]) and math.isfinite(results["reconstruction"]["test_psnr"])
    # the same pixels with their labels: the probe runs (labels are only read by the evaluation)
    labelled = open_dataset("fonts:tiny,res=16")
    ctx = EvalContext(ctx.loaded, labelled, ZeroShotSplit.make(labelled.codes), torch.device("cpu"), max_items=40)
    # `studio eval --dataset fonts:tiny,res=16` accepts the labelled twin of an unlabelled model's data
    twin = make_context(checkpoint, dataset="fonts:tiny,res=16", device="cpu")
    assert twin.dataset.schema.names == labelled.schema.names
    probe = run_evaluations(ctx, only=["linear_probe"])["linear_probe"]
    assert probe["attributes"] == labelled.schema.names
    assert all(0.0 <= v <= 1.0 for v in probe["encoder"] + probe["pixels"])
