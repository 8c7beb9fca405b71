"""What the app remembers between runs: preferences, recent files, window layout (QSettings), and the dialog
that edits the preferences."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.paths import APP_NAME, user_runs_dir
from studio.ui.dialog_parts import ok_cancel_buttons

MAX_RECENT = 8
DEVICES = ("auto", "cpu", "cuda", "mps")
#: Built-in datasets the menus and the Training tab offer: (label, spec without resolution).
DATASET_PRESETS: tuple[tuple[str, str], ...] = (
    ("Fonts (small)", "fonts:small"),
    ("Fonts (tiny)", "fonts:tiny"),
    ("Fonts (full)", "fonts:full"),
    ("Shapes (small)", "shapes:small"),
    ("Shapes (tiny)", "shapes:tiny"),
    ("Shapes (full)", "shapes:full"),
)
RESOLUTIONS = (16, 32, 64, 128)


@dataclass
class Preferences:
    """User preferences; field names are the QSettings keys under ``preferences/``."""

    device: str = "auto"
    thumbnail_size: int = 64
    runs_dir: str = ""
    reopen_last: bool = True
    default_dataset: str = "fonts:small"

    def effective_runs_dir(self) -> Path:
        return Path(self.runs_dir).expanduser() if self.runs_dir else user_runs_dir()


def open_qsettings() -> QSettings:
    """The application's settings store (an INI file in the user's config dir, the same format on every OS)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, APP_NAME, APP_NAME)


class Settings:
    """Typed access to a QSettings store; tests hand in a QSettings backed by a temporary file."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store if store is not None else open_qsettings()

    # --- preferences -------------------------------------------------------------------------------
    def preferences(self) -> Preferences:
        prefs = Preferences()
        for f in fields(Preferences):
            default = getattr(prefs, f.name)
            raw = self.store.value(f"preferences/{f.name}", default)
            setattr(prefs, f.name, _coerce(raw, type(default), default))
        if prefs.device not in DEVICES:
            prefs.device = "auto"
        prefs.thumbnail_size = min(256, max(24, prefs.thumbnail_size))
        return prefs

    def set_preferences(self, prefs: Preferences) -> None:
        for f in fields(Preferences):
            self.store.setValue(f"preferences/{f.name}", getattr(prefs, f.name))
        self.store.sync()

    # --- recent files ------------------------------------------------------------------------------
    def recent(self, kind: str) -> list[str]:
        """Recent ``models``, ``projects`` or ``datasets``, newest first."""
        raw = self.store.value(f"recent/{kind}", [])
        if isinstance(raw, str):
            raw = [raw] if raw else []
        return [str(v) for v in (raw or [])][:MAX_RECENT]

    def add_recent(self, kind: str, entry: str) -> list[str]:
        entries = [entry, *[e for e in self.recent(kind) if e != entry]][:MAX_RECENT]
        self.store.setValue(f"recent/{kind}", entries)
        return entries

    def remove_recent(self, kind: str, entry: str) -> None:
        self.store.setValue(f"recent/{kind}", [e for e in self.recent(kind) if e != entry])

    # --- session and window --------------------------------------------------------------------------
    def value(self, key: str, default: str = "") -> str:
        raw = self.store.value(key, default)
        return str(raw) if raw is not None else default

    def set_value(self, key: str, value: str) -> None:
        self.store.setValue(key, value)

    def bytes_value(self, key: str) -> QByteArray | None:
        raw = self.store.value(key)
        return raw if isinstance(raw, QByteArray) and not raw.isEmpty() else None

    def set_bytes(self, key: str, value: QByteArray) -> None:
        self.store.setValue(key, value)

    def sync(self) -> None:
        self.store.sync()


def _coerce(raw: object, kind: type, default: object) -> object:
    """QSettings INI files give strings back; turn them into the field's type, or keep the default."""
    try:
        if kind is bool:
            return raw if isinstance(raw, bool) else str(raw).strip().lower() in {"1", "true", "yes", "on"}
        if kind is int:
            return int(raw)  # type: ignore[arg-type]
        return kind(raw)
    except (TypeError, ValueError):
        return default


class PreferencesDialog(QDialog):
    """Edits ``Preferences``; the caller applies and stores them when the dialog is accepted."""

    def __init__(self, prefs: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(prefs.device)
        self.device.setToolTip("Where models run: auto takes a CUDA GPU, then Apple MPS, then the CPU. "
                               "Takes effect at the next start.")
        self.thumbnail_size = QSpinBox()
        self.thumbnail_size.setRange(24, 256)
        self.thumbnail_size.setSingleStep(8)
        self.thumbnail_size.setSuffix(" px")
        self.thumbnail_size.setValue(prefs.thumbnail_size)
        self.thumbnail_size.setToolTip("Size of the thumbnails in the dataset browser")
        self.runs_dir = QLineEdit(prefs.runs_dir)
        self.runs_dir.setPlaceholderText(str(user_runs_dir()))
        self.runs_dir.setToolTip("Where the Training tab puts new runs, and where the app looks for your newest model")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse)
        runs_row = QHBoxLayout()
        runs_row.addWidget(self.runs_dir, 1)
        runs_row.addWidget(browse)
        self.default_dataset = QLineEdit(prefs.default_dataset)
        self.default_dataset.setToolTip("Dataset opened when no model is loaded, e.g. fonts:small or a folder path")
        self.reopen_last = QCheckBox("Reopen the last model and dataset at start")
        self.reopen_last.setChecked(prefs.reopen_last)

        form = QFormLayout()
        form.addRow("Device", self.device)
        form.addRow("Thumbnail size", self.thumbnail_size)
        form.addRow("Runs folder", runs_row)
        form.addRow("Default dataset", self.default_dataset)
        form.addRow("", self.reopen_last)
        note = QLabel("Preferences are kept between sessions.")
        note.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(ok_cancel_buttons(self))
        self.setMinimumWidth(480)

    def preferences(self) -> Preferences:
        return Preferences(
            device=self.device.currentText(),
            thumbnail_size=self.thumbnail_size.value(),
            runs_dir=self.runs_dir.text().strip(),
            reopen_last=self.reopen_last.isChecked(),
            default_dataset=self.default_dataset.text().strip() or "fonts:small",
        )

    def _on_browse(self) -> None:
        start = self.runs_dir.text() or str(user_runs_dir())
        chosen = QFileDialog.getExistingDirectory(self, "Runs folder", start)
        if chosen:
            self.runs_dir.setText(chosen)
