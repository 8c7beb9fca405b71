"""A font from a few glyphs (studio.service.font_completion, `studio compose --font-from`) on a real tiny GZS-Net
trained on fonts:tiny (fonts DejaVuSans, DejaVuSerif-Bold, cmtt10, STIXGeneralItalic); the unseen font is a
matplotlib TTF that fonts:tiny leaves out, rendered through ``fonts=DIR``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.data.fonts import FontsDataset, builtin_font_dir
from studio.errors import StudioError
from studio.service import font_completion as fc
from studio.service.composition import Composition, FileSource, ItemSource, MixtureSource, SlotValue
from studio.service.model_service import ModelService

UNSEEN = "DejaVuSansMono-Bold"


@pytest.fixture(scope="module")
def service(tiny_gzs_run: Path, tmp_path_factory: pytest.TempPathFactory):
    svc = ModelService(device="cpu", cache_dir=tmp_path_factory.mktemp("fonts-cache"))
    svc.load_checkpoint(tiny_gzs_run)
    yield svc
    svc.shutdown()


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> FontsDataset:
    """fonts:tiny at 32 px plus the unseen font, through ``fonts=DIR`` as a user would add their own TTF."""
    folder = tmp_path_factory.mktemp("my-fonts")
    shutil.copy(builtin_font_dir() / f"{UNSEEN}.ttf", folder / f"{UNSEEN}.ttf")
    return FontsDataset("tiny", 32, str(folder))


def _render(truth: FontsDataset, letter: str, font: str = UNSEEN, size="large", fg="blue", bg="red") -> np.ndarray:
    s = truth.schema
    return truth.render_values([s["letter"].index(letter), s["size"].index(size), s["font_color"].index(fg),
                                s["background_color"].index(bg), s["font"].index(font)])


@pytest.fixture
def glyph_files(truth: FontsDataset, tmp_path: Path) -> list[Path]:
    paths = []
    for letter in "AC":
        path = tmp_path / f"glyph-{letter}.png"
        Image.fromarray(_render(truth, letter)).save(path)
        paths.append(path)
    return paths


def test_the_font_slot_is_the_mean_of_the_glyphs_codes(service: ModelService, glyph_files: list[Path]) -> None:
    style = fc.style_from_files(service, glyph_files)
    source = style.slot("font").a
    assert source == MixtureSource(tuple((FileSource(str(p.resolve())), 1.0) for p in glyph_files))
    assert style.slot("letter").a is None  # the letter comes per tile
    assert style.slot("font_color").a == source  # the glyphs' colours and size too, unless kept
    kept = fc.style_from_files(service, glyph_files, Composition({"size": SlotValue(a=ItemSource(7))}), keep=["size"])
    assert kept.slot("size").a == ItemSource(7)
    got = service.compose(style.with_slot("letter", SlotValue(a=ItemSource(0)))).latents["font"]
    codes = [service.encode_image(p)["font"] for p in glyph_files]
    assert np.allclose(got, np.mean(codes, axis=0), atol=1e-5)
    assert fc.glyph_source(glyph_files[:1]) == FileSource(str(glyph_files[0].resolve()))


def test_bad_glyph_files_are_named(service: ModelService, tmp_path: Path) -> None:
    with pytest.raises(StudioError, match="at least one"):
        fc.style_from_files(service, [])
    with pytest.raises(StudioError, match=r"nope\.png"):
        fc.style_from_files(service, [tmp_path / "nope.png"])
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(StudioError, match=r"text\.png"):
        fc.style_from_files(service, [tmp_path / "text.png"])


def test_alphabet_sheet_and_morph(service: ModelService, glyph_files: list[Path]) -> None:
    style = fc.style_from_files(service, glyph_files)
    sheet = fc.alphabet_sheet(service, style)
    assert sheet.letters == ("A", "B", "C", "D", "E")
    assert sheet.image.shape == (32 + 4, 5 * 32 + 6 * 2, 3)
    for letter, tile in zip(sheet.letters, sheet.tiles):
        item = fc.letter_item(service, letter, None)
        assert service.dataset.values(item)["letter"] == letter
        assert np.array_equal(tile, service.compose(style.with_slot("letter", SlotValue(a=ItemSource(item)))).image)
    assert np.array_equal(sheet.image[2:34, 2:34], sheet.tiles[0])
    with pytest.raises(StudioError, match="cannot draw 'Q'"):
        fc.alphabet_sheet(service, style, letters=["A", "Q"])

    name, distance = fc.nearest_known_font(service, style)
    assert name in service.dataset.schema["font"].values and distance >= 0
    start = fc.known_font_source(service, name)
    assert service.dataset.values(start.index)["font"] == name
    frames = fc.morph_sheets(service, style, start, frames=4)
    assert len(frames) == 4 and all(f.shape == sheet.image.shape for f in frames)
    assert np.array_equal(frames[-1], sheet.image)  # t = 1 is the glyphs' font
    assert not np.array_equal(frames[0], frames[-1])
    with pytest.raises(StudioError, match="no value 'Comic'"):
        fc.known_font_source(service, "Comic")


def test_measure_completion_on_a_held_out_font(service: ModelService, truth: FontsDataset) -> None:
    cases = fc.measure_completion(service, truth, [UNSEEN], given=2, styles=2, seed=3)
    assert len(cases) == 2
    for case in cases:
        assert len(case.given) == 2 and set(case.letters) == set("ABCDE") - set(case.given)
        assert case.nearest_font in service.dataset.schema["font"].values
        for value in (case.completed_psnr, case.nearest_render_psnr, case.nearest_model_psnr):
            assert 5.0 < value < 60.0
        # the truths are the held-out font's own renders
        size, fg, bg = case.style["size"], case.style["font_color"], case.style["background_color"]
        assert np.array_equal(case.truth[0], _render(truth, case.letters[0], UNSEEN, size, fg, bg))
        assert fc.psnr(case.completed[0], case.truth[0]) == pytest.approx(
            fc.psnr(case.truth[0], case.completed[0]))
    again = fc.measure_completion(service, truth, [UNSEEN], given=3, styles=2, seed=3)
    assert [c.style for c in again] == [c.style for c in cases]  # same styles for every number of glyphs
    assert all(set(a.given) >= set(b.given) for a, b in zip(again, cases))  # nested letters
    with pytest.raises(StudioError, match="no font 'Comic'"):
        fc.measure_completion(service, truth, ["Comic"], given=2)
    with pytest.raises(StudioError, match="between 1 and 4"):
        fc.measure_completion(service, truth, [UNSEEN], given=5)


def test_cli_font_from(service: ModelService, tiny_gzs_run: Path, glyph_files: list[Path], tmp_path: Path,
                       capsys) -> None:
    from studio.cli.main import main

    common = ["--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    sheet, gif, word = tmp_path / "sheet.png", tmp_path / "morph.gif", tmp_path / "word.png"
    files = [str(p) for p in glyph_files]
    assert main(["compose", str(tiny_gzs_run), "--font-from", *files, "--sheet", str(sheet), "--gif", str(gif),
                 "--frames-morph", "3", "--text", "DEBA", "--out", str(word), *common]) == 0
    text = capsys.readouterr().out
    assert "from 2 glyph image(s)" in text and "nearest  known font" in text
    want = fc.alphabet_sheet(service, fc.style_from_files(service, glyph_files)).image
    assert np.array_equal(np.asarray(Image.open(sheet)), want)
    with Image.open(gif) as animation:
        assert animation.n_frames == 4  # 3 frames forth, 1 back
    assert Image.open(word).size[1] == 32
    assert main(["compose", str(tiny_gzs_run), "--font-from", str(tmp_path / "nope.png"), "--sheet", str(sheet),
                 *common]) == 2
    assert "nope.png" in capsys.readouterr().err
    assert main(["compose", str(tiny_gzs_run), "--sheet", str(sheet), "--gif", str(gif), *common]) == 2
    assert "--gif goes with" in capsys.readouterr().err
