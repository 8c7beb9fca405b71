"""Screenshots of the Text and Value Mining docks on the shipped Fonts model, as a person would set them up:

    python -m studio.ui.extra_screenshots docs/screenshots

Types a word, drops three glyphs of a font the model never saw (one of this machine's installed fonts that the
model's dataset lacks, DejaVu Serif Condensed Italic where it is there, rendered through ``fonts=DIR``), mines
v_blue + v_red - v_green in the font colour slot, and grabs the window and each panel.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

# Installed fonts tried in this order for the dropped glyphs; the first the model did not train on is used.
PREFERRED_UNSEEN = ("DejaVuSerifCondensed-Italic", "DejaVuSansCondensed-Bold", "DejaVuSans-ExtraLight")


def _wait(app: QApplication, condition, seconds: float = 900.0) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.02)


def unseen_font(known: set[str], letters: str) -> Path:
    """An installed font file the model's dataset lacks that draws ``letters``: a font it never saw."""
    from studio.data.system_fonts import system_font_files
    from studio.errors import StudioError

    installed = {name: path for name, path in system_font_files(tuple(letters)).items() if name not in known}
    for name in PREFERRED_UNSEEN:
        if name in installed:
            return installed[name]
    if not installed:
        raise StudioError("no installed font is new to the model; install one (e.g. fonts-dejavu-extra) to grab "
                          "the font-from-glyphs screenshot")
    return installed[sorted(installed)[0]]


def glyph_images(folder: Path, known: set[str], letters: str = "ACE") -> list[str]:
    """A few letters in a font the shipped model never trained on, as PNG files."""
    from studio.data.fonts import FontsDataset

    font = unseen_font(known, letters)
    fonts = folder / "fonts"
    fonts.mkdir(parents=True, exist_ok=True)
    shutil.copy(font, fonts)
    truth = FontsDataset("small", 64, str(fonts))
    s = truth.schema
    paths = []
    for letter in letters:
        row = [s["letter"].index(letter), s["size"].index("large"), s["font_color"].index("blue"),
               s["background_color"].index("yellow"), s["font"].index(font.stem)]
        path = folder / f"{font.stem}-{letter}.png"
        Image.fromarray(truth.render_values(row)).save(path)
        paths.append(str(path))
    return paths


def main(out: Path) -> int:
    from studio.paths import default_model
    from studio.service.factory import create_service
    from studio.service.mined_values import MinedValueStore
    from studio.ui.main_window import MainWindow
    from studio.ui.settings import Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        service = create_service(device="cpu", cache_dir=Path(tmp) / "cache")
        window = MainWindow(service, Settings(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)))
        window.values_panel.store = MinedValueStore(Path(tmp) / "values.json")
        window.resize(1480, 980)
        window.show()
        window.start_session(default_model("fonts"))
        _wait(app, lambda: window.composer.image is not None)
        window.text_dock.show()
        window.values_dock.show()
        text, values = window.text_panel, window.values_panel
        text.set_text("BADGE CAFE")
        text.set_glyphs(glyph_images(Path(tmp), set(service.model.schema["font"].values)))
        try:
            _wait(app, lambda: text.sheet is not None and text.line is not None)
        except TimeoutError:
            raise TimeoutError(f"no text line or sheet: {text.message.text()}") from None
        values.show_slot("font_color")
        _wait(app, lambda: values.amount_slider.isEnabled())
        values.set_recipe([("blue", 1.0), ("red", 1.0), ("green", -1.0)])
        values.set_amount(values._reach() * 0.6)
        values.name_edit.setText("plum")
        values.save_value("plum")
        _wait(app, lambda: values.saved_list.count() == 1)
        values.name_edit.setText("violet")
        start = time.monotonic()
        _wait(app, lambda: time.monotonic() - start > 3.0)
        window.grab().save(str(out / "text_and_values.png"))
        text.grab().save(str(out / "text_panel.png"))
        values.grab().save(str(out / "value_mining.png"))
        window.close()
        service.shutdown()
    print(f"wrote {out}/text_and_values.png, text_panel.png, value_mining.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")))
