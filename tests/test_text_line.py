"""Typed text (studio.service.text_line and `studio compose --text`) on a real tiny GZS-Net (letters A-E)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.errors import StudioError
from studio.service.composition import Composition, ItemSource, LatentSource, SlotValue
from studio.service.model_service import ModelService
from studio.service.text_line import (
    TextLineComposer,
    alphabet,
    ink_extent,
    letter_item,
    letter_slot,
    set_line,
)

WAIT = 60


@pytest.fixture(scope="module")
def service(tiny_gzs_run: Path, tmp_path_factory: pytest.TempPathFactory):
    svc = ModelService(device="cpu", cache_dir=tmp_path_factory.mktemp("text-cache"))
    svc.load_checkpoint(tiny_gzs_run)
    yield svc
    svc.shutdown()


def _glyph(width: int, height: int = 20, bg=(250, 240, 10), ink=(0, 0, 200), left: int | None = None) -> np.ndarray:
    img = np.empty((height, height, 3), np.uint8)
    img[:] = bg
    x0 = (height - width) // 2 if left is None else left
    img[4:-4, x0:x0 + width] = ink
    return img


# --- setting a line, without a model ----------------------------------------------------------------
def test_ink_extent_finds_the_glyph_against_its_own_background() -> None:
    assert ink_extent(_glyph(6, left=3)) == (3, 9)
    assert ink_extent(_glyph(6, left=3, bg=(0, 0, 0), ink=(255, 255, 255))) == (3, 9)
    noisy = _glyph(4, left=10).astype(np.int16) + np.random.default_rng(0).integers(-8, 9, (20, 20, 3))
    assert ink_extent(np.clip(noisy, 0, 255).astype(np.uint8)) == (10, 14)
    assert ink_extent(np.full((20, 20, 3), 128, np.uint8)) is None  # blank: no ink at all


def test_set_line_kerns_by_ink_width_and_leaves_gaps() -> None:
    narrow, wide = _glyph(2), _glyph(12)
    line, spans = set_line([wide, narrow, None, wide], tracking=0.1, space=7)
    gap = 2  # 0.1 x 20 px
    widths = [b - a for a, b in spans]
    assert widths == [12, 2, 7, 12]
    assert spans[0][0] == gap and all(spans[k + 1][0] - spans[k][1] == gap for k in range(3))
    assert line.shape == (20, gap + sum(w + gap for w in widths), 3)
    # ink where the glyphs are, the shared background between them (no seams), none in the gap
    assert (line[10, spans[1][0]:spans[1][1]] == (0, 0, 200)).all()
    assert (line[10, spans[2][0]:spans[2][1]] == (250, 240, 10)).all()
    assert (line[2] == (250, 240, 10)).all()
    # a tighter setting only moves glyphs closer
    tight, _ = set_line([wide, narrow, None, wide], tracking=0.0, space=7)
    assert tight.shape[1] < line.shape[1]
    with pytest.raises(StudioError, match="nothing to draw"):
        set_line([None, None])


# --- planning and composing with a model --------------------------------------------------------------
def test_plan_names_missing_characters_and_folds_case(service: ModelService) -> None:
    composer = TextLineComposer(service)
    assert alphabet(service) == ("A", "B", "C", "D", "E")
    plan = composer.plan("bad Exit", Composition({}, ItemSource(0)))
    assert [g.value for g in plan.glyphs] == ["B", "A", "D", None, "E", None, None, None]
    assert plan.missing == ("x", "i", "t")
    message = plan.message()
    assert "'x' 'i' 't'" in message and "ABCDE" in message and "b, a, d drawn as B, A, D" in message
    for bad, why in (("", "empty"), ("   ", "empty"), ("AB\nCD", "one line")):
        with pytest.raises(StudioError, match=why):
            composer.plan(bad, Composition({}, ItemSource(0)))
    with pytest.raises(StudioError, match="letter source"):
        composer.plan("A", Composition(), letter_source="nearest")


def test_letter_items_show_the_letter_and_share_the_style(service: ModelService) -> None:
    dataset = service.dataset
    like = 17
    for value in "ABCDE":
        item = letter_item(service, value, like)
        got = dataset.values(item)
        assert got["letter"] == value
        # no item of that letter shares more of item 17's other values
        want = dataset.values(like)
        score = sum(got[k] == want[k] for k in want if k != "letter")
        best = max(sum(dataset.values(i)[k] == want[k] for k in want if k != "letter")
                   for i in range(len(dataset)) if dataset.values(i)["letter"] == value)
        assert score == best
    with pytest.raises(StudioError, match="no value 'Z'"):
        letter_item(service, "Z")


def test_a_line_is_its_glyphs_composed_through_the_service(service: ModelService) -> None:
    style = Composition({"font": SlotValue(a=ItemSource(40)), "font_color": SlotValue(a=ItemSource(100))},
                        ItemSource(3))
    result = TextLineComposer(service).render("CAB BAD", style)
    assert result.image.shape[0] == service.model.resolution
    assert len(result.spans) == 7 and len(result.glyph_images) == 6
    slot = letter_slot(service)
    for glyph, image in zip(result.plan.drawn, result.glyph_images):
        assert glyph.composition.slot("font") == style.slot("font")  # the style's sources stay
        assert glyph.composition.slot("font_color") == style.slot("font_color")
        letter_src = glyph.composition.slot(slot).a
        assert service.dataset.values(letter_src.index)["letter"] == glyph.value
        assert np.array_equal(image, service.compose(glyph.composition).image)
    # the same letter twice is the same glyph; different letters differ
    assert np.array_equal(result.glyph_images[2], result.glyph_images[3])  # B, B
    assert not np.array_equal(result.glyph_images[0], result.glyph_images[1])  # C, A
    # a new font for every glyph changes the line
    other = TextLineComposer(service).render("CAB BAD", style.with_slot("font", SlotValue(a=ItemSource(41))))
    assert not np.array_equal(other.glyph_images[0], result.glyph_images[0])


def test_mean_letter_codes(service: ModelService) -> None:
    composer = TextLineComposer(service, letter_source="mean")
    plan = composer.plan("EA", Composition({}, ItemSource(0)))
    slot = letter_slot(service)
    source = plan.glyphs[0].composition.slot(slot).a
    assert isinstance(source, LatentSource)
    dataset = service.dataset
    items = np.flatnonzero(dataset.codes[:, 0] == dataset.schema["letter"].index("E"))
    chosen = items[np.linspace(0, len(items) - 1, min(32, len(items))).round().astype(int)]
    want = service.encode_items(chosen)[slot].mean(axis=0)
    assert np.allclose(source.values, want, atol=1e-5)
    assert composer.render("EA", Composition({}, ItemSource(0))).image.shape[0] == 32


def test_requests_coalesce_and_the_newest_text_wins(service: ModelService) -> None:
    composer = TextLineComposer(service)
    got: list = []
    errors: list = []
    done = threading.Event()

    def on_result(result) -> None:
        got.append(result)
        if result.plan.text == "EDCBA":
            done.set()

    try:
        for text in ("A", "AB", "ABC", "ABCD", "EDCBA"):
            composer.request(text, Composition({}, ItemSource(0)), on_result, errors.append)
        assert done.wait(WAIT), errors
        assert not errors
        assert got[-1].plan.text == "EDCBA"
        assert len(got) < 5 or [r.request_id for r in got] == sorted(r.request_id for r in got)
        failed = threading.Event()
        composer.request("", Composition({}, ItemSource(0)), on_result, lambda e: (errors.append(e), failed.set()))
        assert failed.wait(WAIT) and "empty" in str(errors[-1])
    finally:
        composer.shutdown()
    assert not any(t.name.startswith("studio-text-line") for t in threading.enumerate())


# --- studio compose --text ---------------------------------------------------------------------------------
def test_cli_text(service: ModelService, tiny_gzs_run: Path, tmp_path: Path, capsys) -> None:
    from studio.cli.main import main

    common = ["--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    out = tmp_path / "word.png"
    assert main(["compose", str(tiny_gzs_run), "--text", "Bead", "--take", "font=40", "--base", "3",
                 "--out", str(out), *common]) == 0
    text = capsys.readouterr().out
    assert "e, a, d drawn as E, A, D" in text and f"wrote    {out}" in text
    want = TextLineComposer(service).render("BEAD", Composition({"font": SlotValue(a=ItemSource(40))}, ItemSource(3)))
    # the same line: oneDNN may pick other kernels for other batch sizes, which moves a pixel by a level or two
    diff = np.abs(np.asarray(Image.open(out)).astype(int) - want.image.astype(int))
    assert diff.shape == (*want.image.shape[:2], 3) and diff.max() <= 3 and diff.mean() < 0.1, (diff.max(), diff.mean())

    assert main(["compose", str(tiny_gzs_run), "--text", "BOX", "--out", str(out), *common]) == 0
    assert "cannot draw 'O' 'X'" in capsys.readouterr().out
    assert main(["compose", str(tiny_gzs_run), "--text", "xyz", "--out", str(out), *common]) == 2
    assert "nothing to draw" in capsys.readouterr().err
    assert main(["compose", str(tiny_gzs_run), "--text", "AB", *common]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["compose", str(tiny_gzs_run), "--text", "AB", "--query", "letter=A", "--out", str(out),
                 *common]) == 2
    assert "not with --query" in capsys.readouterr().err


def test_a_line_is_one_batched_decoder_call(service: ModelService) -> None:
    """Every distinct glyph of a line is decoded in one call; the batch draws what single composes draw."""
    style = Composition({}, ItemSource(7))
    composer = TextLineComposer(service)
    composer.render("AB", style)  # warm the caches (encoded items, letter items)
    before = service.decoder_calls
    result = composer.render("CAB EDA", style)
    assert service.decoder_calls - before == 1
    assert len(result.glyph_images) == 6
    singles = [service.compose(g.composition).image for g in result.plan.drawn]
    for batched, single in zip(result.glyph_images, singles):
        assert np.abs(batched.astype(int) - single.astype(int)).max() <= 1


def test_a_first_line_encodes_its_letter_items_in_one_call(tiny_gzs_run: Path, tmp_path: Path) -> None:
    fresh = ModelService(device="cpu", cache_dir=tmp_path / "cache")
    try:
        fresh.load_checkpoint(tiny_gzs_run)
        calls, items = fresh.encoder_calls, fresh.encoded_items
        result = TextLineComposer(fresh).render("ABCDE", Composition({}, ItemSource(len(fresh.dataset) - 1)))
        assert len(result.glyph_images) == 5
        assert fresh.encoded_items - items >= 2  # several letter items were new to the cache (the opening
        # sample encoded at load holds some)...
        assert fresh.encoder_calls - calls == 1  # ... and all of them went through the encoder together
    finally:
        fresh.shutdown()


def test_compose_batch_matches_compose_and_splits_long_batches(service: ModelService) -> None:
    comps = [Composition({"font": SlotValue(a=ItemSource(i))}, ItemSource(3 + i)) for i in range(5)]
    old = service.batch_per_job
    service.batch_per_job = 2
    try:
        before = service.decoder_calls
        results = service.compose_batch(comps)
        assert service.decoder_calls - before == 3  # 2 + 2 + 1
    finally:
        service.batch_per_job = old
    assert service.compose_batch([]) == []
    for comp, got in zip(comps, results):
        want = service.compose(comp)
        assert np.abs(got.image.astype(int) - want.image.astype(int)).max() <= 1
        assert set(got.latents) == set(want.latents)
        for k in want.latents:
            np.testing.assert_allclose(got.latents[k], want.latents[k], atol=1e-6)
    assert len(service.compose_batch_async(comps[:2]).result(timeout=WAIT)) == 2
