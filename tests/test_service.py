"""The model service on a real tiny GZS-Net: composing, coalescing, caching, projections, queries, directions."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.errors import StudioError
from studio.service.composition import (
    Composition,
    DirectionStep,
    FileSource,
    ItemSource,
    LatentSource,
    MixtureSource,
    SlotValue,
)
from studio.service.inference import Cancelled, Coalescer, InferenceWorker
from studio.service.model_service import ModelService, load_image_file

WAIT = 60  # seconds a test waits for the worker before it fails (never an assertion about speed)


@pytest.fixture(scope="module")
def service(tiny_gzs_run: Path, tmp_path_factory: pytest.TempPathFactory):
    svc = ModelService(device="cpu", cache_dir=tmp_path_factory.mktemp("latent-cache"))
    svc.load_checkpoint(tiny_gzs_run)
    yield svc
    svc.shutdown()


def _all_from(index: int, slots: list[str]) -> Composition:
    return Composition({s: SlotValue(a=ItemSource(index)) for s in slots})


# --- the worker and coalescing, with plain callables ------------------------------------------------
def test_worker_runs_nested_calls_inline_on_its_own_thread():
    worker = InferenceWorker()
    try:
        names = worker.call(lambda: (threading.current_thread().name, worker.call(lambda: worker.on_worker)))
        assert names[0].startswith("studio-inference") and names[1] is True
        assert not worker.on_worker
    finally:
        worker.shutdown()
    with pytest.raises(StudioError, match="shut down"):
        worker.submit(lambda: 1)


def test_coalescer_delivers_only_the_newest_request_of_each_channel():
    worker = InferenceWorker()
    coalescer = Coalescer(worker)
    gate, first_started = threading.Event(), threading.Event()
    delivered: dict[str, list[int]] = {"a": [], "b": []}
    done = {"a": threading.Event(), "b": threading.Event()}
    errors: list[BaseException] = []

    def work(request_id: int) -> int:
        first_started.set()
        gate.wait(WAIT)
        return request_id

    def deliver(channel: str):
        def on_result(rid: int) -> None:
            delivered[channel].append(rid)
            done[channel].set()
        return on_result

    try:
        ids_a = [coalescer.request("a", work, deliver("a"), errors.append) for _ in range(50)]
        assert first_started.wait(WAIT)
        ids_b = [coalescer.request("b", work, deliver("b"), errors.append) for _ in range(5)]
        gate.set()
        assert done["a"].wait(WAIT) and done["b"].wait(WAIT)
        worker.call(lambda: None)  # everything queued before this has run
    finally:
        worker.shutdown()
    assert ids_a == sorted(ids_a) and ids_b[0] > ids_a[-1]
    # The request already running when the burst came is shown (a drag keeps moving); the 48 queued behind it
    # collapse into the newest, which is computed next.
    assert delivered == {"a": [ids_a[0], ids_a[-1]], "b": [ids_b[0], ids_b[-1]]}
    assert coalescer.stats("a") == {"delivered": 2, "dropped": 48, "latest": ids_a[-1]}
    assert not errors


def test_coalescer_reports_failures_and_keeps_going():
    worker = InferenceWorker()
    coalescer = Coalescer(worker)
    got: list[object] = []
    finished = threading.Event()

    def boom(request_id: int) -> int:
        raise StudioError("bad composition")

    def record(x: object) -> None:
        got.append(x)
        finished.set()

    try:
        coalescer.request("c", boom, record, record)
        assert finished.wait(WAIT)
        finished.clear()
        coalescer.request("c", lambda rid: rid, record, record)
        assert finished.wait(WAIT)
    finally:
        worker.shutdown()
    assert isinstance(got[0], StudioError) and "bad composition" in str(got[0])
    assert isinstance(got[1], int)


# --- loading --------------------------------------------------------------------------------------
def test_load_opens_the_models_own_dataset_and_says_so(tiny_gzs_run: Path, tmp_path: Path):
    svc = ModelService(device="cpu", cache_dir=tmp_path)
    seen: list[str] = []
    svc.events.model_changed.connect(lambda info: seen.append(f"model {info.method}"))
    svc.events.dataset_changed.connect(lambda info: seen.append(f"dataset {info.spec}"))
    busy: list[str] = []
    svc.events.busy.connect(busy.append)
    try:
        with pytest.raises(StudioError, match="no model"):
            svc.compose(Composition())
        info = svc.load_checkpoint(tiny_gzs_run)
        assert info.method == "gzs" and info.can_encode and info.resolution == 32
        assert info.slot_names == list(svc.dataset.schema.names)
        assert info.dataset_warning == ""
        assert f" · {tiny_gzs_run.name} · step " in info.title  # named by its run, not "last"
        assert seen == ["model gzs", f"dataset {info.dataset_spec}"]
        assert busy[0].startswith("loading") and busy[-1] == ""
        assert svc.dataset_info.fingerprint == info.dataset_fingerprint
    finally:
        svc.shutdown()


def test_a_model_is_named_by_its_run_its_shipped_folder_or_its_file():
    from studio.service.state import model_name

    assert model_name(Path("runs/cpu20/checkpoints/step-00000500.safetensors")) == "cpu20"
    assert model_name(Path("models/fonts-gzs/model.safetensors")) == "fonts-gzs"  # not "model"
    assert model_name(Path("downloads/serif-tuned.safetensors")) == "serif-tuned"


def test_other_datasets_work_when_their_attributes_match(tiny_gzs_run: Path, tmp_path: Path):
    svc = ModelService(device="cpu", cache_dir=tmp_path)
    try:
        svc.load_checkpoint(tiny_gzs_run)
        with pytest.raises(StudioError) as err:
            svc.open_dataset("shapes:tiny,res=32")
        assert "shapes:tiny" in str(err.value) and "fonts:tiny" in str(err.value)
        assert svc.dataset.spec.startswith("fonts:tiny")  # the failed open changed nothing
        svc.open_dataset("fonts:tiny,res=16")
        assert "resized from 16 to 32" in svc.model.dataset_warning
        assert svc.compose(_all_from(3, svc.model.slot_names)).image.shape == (32, 32, 3)
    finally:
        svc.shutdown()


def test_a_model_and_a_dataset_of_another_kind_switch_together(tiny_gzs_run: Path, tmp_path: Path):
    """Shapes cannot open beside a Fonts model, but loading a Shapes model with ``dataset_spec`` swaps both."""
    from studio.paths import shipped_models

    shapes_model = next(p for p in shipped_models() if p.parent.name.startswith("shapes"))
    svc = ModelService(device="cpu", cache_dir=tmp_path)
    try:
        svc.load_checkpoint(tiny_gzs_run)
        info = svc.load_checkpoint(shapes_model, dataset_spec="shapes:tiny")
        assert info.method == "gzs" and "shape" in info.slot_names
        assert svc.dataset.spec.startswith("shapes:tiny") and svc.model.path == info.path
        assert svc.compose(_all_from(2, info.slot_names)).image.shape == (64, 64, 3)
        with pytest.raises(StudioError):       # a bad spec leaves the loaded pair as it was
            svc.load_checkpoint(tiny_gzs_run, dataset_spec="/no/such/folder")
        assert svc.model.path == info.path and svc.dataset.spec.startswith("shapes:tiny")
    finally:
        svc.shutdown()


# --- composing ------------------------------------------------------------------------------------
def test_each_slot_comes_from_its_own_source(service: ModelService):
    slots = service.model.slot_names
    base, donor = 3, 200
    lat = service.encode_items([base, donor])
    plain = service.compose(Composition(base=ItemSource(base)))
    assert plain.image.dtype == np.uint8 and plain.image.shape == (32, 32, 3)
    assert np.array_equal(plain.image, service.compose(_all_from(base, slots)).image)
    swapped = service.compose(Composition({"font_color": SlotValue(a=ItemSource(donor))}, base=ItemSource(base)))
    for s in slots:
        want = lat[s][1] if s == "font_color" else lat[s][0]
        assert swapped.latents[s].dtype == np.float32
        assert np.allclose(swapped.latents[s], want, atol=1e-5), s
    assert not np.array_equal(swapped.image, plain.image)
    # No base: unassigned slots take item 0.
    zero = service.compose(Composition({"letter": SlotValue(a=ItemSource(base))}))
    assert np.allclose(zero.latents["size"], service.encode_items([0])["size"][0], atol=1e-5)


def test_lerp_mixture_and_stored_latents_agree(service: ModelService, monkeypatch):
    monkeypatch.setattr(service, "follow_data", False)  # the straight line; the on-data path: test_data_manifold
    i, j = 10, 150
    lat = service.encode_items([i, j])
    lerp = service.compose(Composition({"letter": SlotValue(ItemSource(i), ItemSource(j), t=0.75)}, ItemSource(i)))
    assert np.allclose(lerp.latents["letter"], 0.25 * lat["letter"][0] + 0.75 * lat["letter"][1], atol=1e-5)
    mix = MixtureSource(((ItemSource(i), 1.0), (ItemSource(j), 3.0)))
    mixed = service.compose(Composition({"letter": SlotValue(a=mix)}, ItemSource(i)))
    assert np.allclose(mixed.latents["letter"], lerp.latents["letter"], atol=1e-5)
    stored = LatentSource(tuple(float(v) for v in lat["letter"][1]), (len(lat["letter"][1]),))
    from_latent = service.compose(Composition({"letter": SlotValue(a=stored)}, ItemSource(i)))
    from_item = service.compose(Composition({"letter": SlotValue(a=ItemSource(j))}, ItemSource(i)))
    assert np.array_equal(from_latent.image, from_item.image)
    with pytest.raises(StudioError, match="non-negative"):
        service.compose(Composition({"letter": SlotValue(a=MixtureSource(((ItemSource(i), -1.0),)))}))
    with pytest.raises(StudioError, match="letter"):
        service.compose(Composition({"letter": SlotValue(a=LatentSource((1.0, 2.0), (2,)))}))
    with pytest.raises(StudioError, match="item 99999"):
        service.compose(Composition(base=ItemSource(99999)))


def test_interpolation_runs_from_a_to_b(service: ModelService):
    comp = Composition({"letter": SlotValue(ItemSource(5), ItemSource(100)),
                        "font": SlotValue(ItemSource(5), ItemSource(190), locked=True)}, base=ItemSource(5))
    frames = service.interpolate(comp, "letter", 5)
    assert len(frames) == 5
    assert np.array_equal(frames[0], service.compose(comp).image)
    end = service.compose(comp.with_slot("letter", comp.slot("letter").with_t(1.0))).image
    assert np.abs(frames[-1].astype(int) - end).max() <= 1
    together = service.interpolate(comp, None, 3)
    assert np.abs(together[-1].astype(int) - end).max() <= 1  # the locked slot stayed at its A
    with pytest.raises(StudioError, match="second source"):
        service.interpolate(Composition(base=ItemSource(5)), "size", 4)


def test_a_burst_of_requests_delivers_the_last_one(service: ModelService):
    comps = [Composition({"letter": SlotValue(ItemSource(1), ItemSource(120), t=k / 49)}, ItemSource(1))
             for k in range(50)]
    delivered = []
    last_done = threading.Event()
    ids: list[int] = []

    def on_result(result) -> None:
        delivered.append(result)
        if ids and result.request_id == ids[-1]:
            last_done.set()

    for comp in comps:
        ids.append(service.request_compose(comp, on_result, channel="burst"))
    if any(r.request_id == ids[-1] for r in delivered):
        last_done.set()
    assert last_done.wait(WAIT)
    assert ids == sorted(set(ids))
    got = [r.request_id for r in delivered]
    assert got == sorted(set(got)) and got[-1] == ids[-1]  # never an older frame after a newer one
    assert len(delivered) <= 5
    assert np.array_equal(delivered[-1].image, service.compose(comps[-1]).image)
    assert service.coalescing_stats("burst")["dropped"] >= 45


def test_acompose_awaits_the_worker(service: ModelService):
    comp = Composition(base=ItemSource(42))

    async def both():
        return await asyncio.gather(service.acompose(comp), service.acompose(comp.with_slot(
            "letter", SlotValue(a=ItemSource(7)))))

    first, second = asyncio.run(both())
    assert np.array_equal(first.image, service.compose(comp).image)
    assert second.request_id > first.request_id
    assert isinstance(service.compose_async(comp).result(timeout=WAIT).image, np.ndarray)


# --- encoding and the cache -----------------------------------------------------------------------
def test_a_second_service_reads_the_disk_cache_without_encoding(tiny_gzs_run: Path, tmp_path: Path):
    items = np.arange(0, 240, 3)
    first = ModelService(device="cpu", cache_dir=tmp_path)
    try:
        first.load_checkpoint(tiny_gzs_run)  # encodes a sample of items to choose the opening composition
        at_load = first.encoded_items
        a = first.encode_items(items)
        calls = first.encoder_calls
        assert calls >= 1 and 0 < first.encoded_items - at_load <= len(items)
        first.encode_items(items[::-1])
        assert first.encoder_calls == calls
    finally:
        first.shutdown()
    second = ModelService(device="cpu", cache_dir=tmp_path)
    try:
        second.load_checkpoint(tiny_gzs_run)
        b = second.encode_items(items)
        assert second.encoder_calls == 0
        for slot in a:
            assert b[slot].shape == (len(items), second.model.slot(slot).size)
            assert np.array_equal(a[slot], b[slot])
        second.encode_pixels(second.dataset.images([1]))  # pixels are always encoded: the counter counts
        assert second.encoder_calls == 1
    finally:
        second.shutdown()


def test_image_files_are_cropped_resized_and_encoded(service: ModelService, tmp_path: Path):
    item = service.dataset.image(17)
    wide = np.zeros((96, 160, 3), np.uint8)
    wide[:, :32] = 255  # side bands the centre crop must cut away
    wide[:, 128:] = (255, 0, 0)
    wide[:, 32:128] = np.asarray(Image.fromarray(item).resize((96, 96), Image.Resampling.NEAREST))
    path = tmp_path / "my letter.png"
    Image.fromarray(wide).save(path)
    pixels = load_image_file(path, 32)
    assert pixels.shape == (32, 32, 3)
    assert np.abs(pixels.astype(int) - item).mean() < 12
    latents = service.encode_image(path)
    direct = service.encode_pixels(pixels[None])
    for slot, z in latents.items():
        assert z.shape == (service.model.slot(slot).size,)
        assert np.allclose(z, direct[slot][0], atol=1e-5)
    composed = service.compose(Composition({"letter": SlotValue(a=FileSource(str(path)))}, ItemSource(0)))
    assert np.allclose(composed.latents["letter"], latents["letter"], atol=1e-5)
    clear = np.zeros((20, 20, 4), np.uint8)
    Image.fromarray(clear, "RGBA").save(tmp_path / "clear.png")
    assert (load_image_file(tmp_path / "clear.png", 8) == 255).all()  # transparency shows white
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(StudioError, match=r"notes\.png"):
        service.encode_image(tmp_path / "notes.png")
    with pytest.raises(StudioError, match=r"missing\.png"):
        service.encode_image(tmp_path / "missing.png")


# --- projections ------------------------------------------------------------------------------------
def test_projection_is_fitted_once_reports_progress_and_cancels(service: ModelService):
    service.job_items, service.job_seconds = 64, None  # jobs of exactly 64 items, however fast encoding is
    try:
        with pytest.raises(Cancelled):
            service.project("size", 200, cancel=_set_event())
        steps: list[float] = []
        with pytest.raises(Cancelled):
            service.project("size", 200, progress=steps.append, cancel=lambda: len(steps) >= 1)
        assert len(steps) == 1 and 0 < steps[0] < 1
        steps.clear()
        small = service.project("size", 100, progress=steps.append)
        assert steps == sorted(steps) and steps[-1] == 1.0 and len(steps) == 2
        assert small.xy.shape == (100, 2) and small.xy.dtype == np.float32 and small.method == "pca"
        assert not small.pooled and "100 of 240" in small.note
        assert len(np.unique(service.dataset.codes[small.indices, 1])) == 2  # both sizes in the sample
        again = service.project("size", 100)
        assert again is small
        full = service.project("size", 240)
        shared, in_small, in_full = np.intersect1d(small.indices, full.indices, return_indices=True)
        assert len(shared) == 100
        assert np.allclose(small.xy[in_small], full.xy[in_full], atol=1e-5)  # the same fit: points do not jump
        z = service.encode_items(small.indices[:4])["size"]
        assert np.allclose(service.project_latent("size", z), small.xy[:4], atol=1e-5)
        assert service.project_latent("size", z[0]).shape == (1, 2)
    finally:
        service.job_items, service.job_seconds = ModelService.job_items, ModelService.job_seconds
    with pytest.raises(StudioError, match="project"):
        service.project_latent("font", np.zeros(service.model.slot("font").size))


def test_a_large_projection_first_shows_a_stratified_preview_whose_points_stay(service: ModelService):
    service.preview_points = 60
    try:
        previews = []
        full = service.project("letter", 240, preview=previews.append)
    finally:
        service.preview_points = ModelService.preview_points
    assert len(previews) == 1
    first = previews[0]
    assert len(first.indices) == 60 and "60 of 240" in first.note and len(full.indices) == 240
    letters = service.dataset.codes[first.indices, 0]
    assert len(np.unique(letters)) == len(np.unique(service.dataset.codes[:, 0]))  # every letter in the preview
    shared, in_first, in_full = np.intersect1d(first.indices, full.indices, return_indices=True)
    assert len(shared) == 60 and np.allclose(first.xy[in_first], full.xy[in_full], atol=1e-5)
    assert np.all(np.diff(full.indices) > 0)
    z = service.encode_items(full.indices[-3:])["letter"]
    assert np.allclose(service.project_latent("letter", z), full.xy[-3:], atol=1e-5)  # rows follow the items
    assert service.project("letter", 240, preview=previews.append) is full and len(previews) == 1  # kept


def _set_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


# --- queries and directions -----------------------------------------------------------------------
def test_query_fills_slots_from_training_items_and_finds_the_exact_image(service: ModelService):
    dataset = service.dataset
    from studio.data.splits import ZeroShotSplit

    split = ZeroShotSplit.make(dataset.codes, 0.25, 0)
    target = int(split.test[3])
    wanted = dataset.values(target)
    result = service.query(wanted)
    assert result.exact_index is not None and dataset.values(result.exact_index) == wanted
    for attribute, item in result.cover.items():
        assert item in set(split.train.tolist())
        slot = service.slot_for_attribute(attribute)
        assert result.composition.slot(slot).a == ItemSource(item)
        assert dataset.values(item)[attribute] == wanted[attribute]
    assert service.compose(result.composition).image.shape == (32, 32, 3)
    with pytest.raises(StudioError, match="colour"):
        service.query({"colour": "red"})


def test_moving_toward_a_value_raises_its_score(service: ModelService):
    dirs = service.directions("font_color")
    assert dirs.attribute == "font_color" and set(dirs.values) == {"red", "green", "blue"}
    assert np.allclose(np.linalg.norm(dirs.directions, axis=1), 1, atol=1e-4)
    assert service.directions("font_color") is dirs
    dataset = service.dataset
    col = dataset.schema.position("font_color")
    items = np.flatnonzero(dataset.codes[:, col] != dataset.schema["font_color"].index("red"))[::9][:8]
    red = dirs.index("red")
    for item in items:
        comp = Composition(base=ItemSource(int(item)))
        before = service.compose(comp)
        moved = service.compose(service.toward_value(comp, "font_color", "red", 2.0))
        assert moved.latents["font_color"] @ dirs.directions[red] > before.latents["font_color"] @ dirs.directions[red]
        assert dirs.scores(moved.latents["font_color"])[0, red] > dirs.scores(before.latents["font_color"])[0, red]
        far = service.compose(service.toward_value(comp, "font_color", "red", 50.0))
        assert dirs.scores(far.latents["font_color"])[0].argmax() == red
        for slot in service.model.slot_names:  # other slots do not move
            if slot != "font_color":
                assert np.array_equal(moved.latents[slot], before.latents[slot])
    comp = Composition(base=ItemSource(int(items[0])))
    twice = service.toward_value(service.toward_value(comp, "font_color", "red", 1.0), "font_color", "red", 0.5)
    assert twice.slot("font_color").steps == (DirectionStep("font_color", "red", 1.5),)
    mined = Composition({"font_color": SlotValue(steps=(DirectionStep("font_color", "blue", 1.0,
                                                                      (("red", 1.0), ("green", -1.0))),))},
                        ItemSource(int(items[0])))
    base_z = service.encode_items([int(items[0])])["font_color"][0]
    want = base_z + dirs.combined("blue", (("red", 1.0), ("green", -1.0)))
    assert np.allclose(service.compose(mined).latents["font_color"], want, atol=1e-5)
    centred = service.compose(service.jump_to_centre(comp, "font_color", "green"))
    assert np.allclose(centred.latents["font_color"], dirs.centre("green"), atol=1e-5)
    with pytest.raises(StudioError, match="purple"):
        service.compose(service.toward_value(comp, "font_color", "purple", 1.0))


# --- studio compose -------------------------------------------------------------------------------
def test_cli_compose_take_query_and_interpolate(service: ModelService, tiny_gzs_run: Path, tmp_path: Path, capsys):
    from studio.cli.main import main

    common = ["--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    out = tmp_path / "take.png"
    assert main(["compose", str(tiny_gzs_run), "--take", "letter=3", "--take", "font_color=100", "--out", str(out),
                 *common]) == 0
    want = service.compose(Composition({"letter": SlotValue(a=ItemSource(3)),
                                        "font_color": SlotValue(a=ItemSource(100))}, ItemSource(3))).image
    assert np.array_equal(np.asarray(Image.open(out)), want)
    assert "item 100" in capsys.readouterr().out

    from studio.data.splits import ZeroShotSplit

    held_out = int(ZeroShotSplit.make(service.dataset.codes, 0.25, 0).test[0])
    query = ",".join(f"{k}={v}" for k, v in service.dataset.values(held_out).items())
    assert main(["compose", str(tiny_gzs_run), "--query", query, "--out", str(tmp_path / "q.png"), *common]) == 0
    text = capsys.readouterr().out
    assert f"exact    item {held_out} (held-out)" in text and "cover (training items)" in text
    assert Image.open(tmp_path / "q.png").size == (32, 32)

    strip, gif = tmp_path / "strip.png", tmp_path / "strip.gif"
    assert main(["compose", str(tiny_gzs_run), "--interpolate", "size=3:200", "--frames", "6", "--out", str(strip),
                 "--gif", str(gif), "--scale", "2", "--straight", *common]) == 0
    assert Image.open(strip).size == (6 * 64, 64)
    with Image.open(gif) as animation:
        assert animation.n_frames == 10  # forth and back (the straight line: no two frames alike to merge)
    assert main(["compose", str(tiny_gzs_run), "--interpolate", "size=3:200", "--frames", "6", "--out", str(strip),
                 *common]) == 0  # the default path, pulled onto the data
    assert Image.open(strip).size == (6 * 32, 32)
    capsys.readouterr()
    assert main(["compose", str(tiny_gzs_run), "--take", "colour=3", "--out", str(out), *common]) == 2
    assert "colour" in capsys.readouterr().err
    assert main(["compose", str(tiny_gzs_run), "--interpolate", "size=3", "--out", str(out), *common]) == 2
    assert "IDX_A:IDX_B" in capsys.readouterr().err
