"""Small builders the app's dialogs share, so every question box and every OK/Cancel row is made the same way."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QPushButton, QWidget


def ok_cancel_buttons(dialog: QDialog) -> QDialogButtonBox:
    """An OK and a Cancel button that accept and reject ``dialog``."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


def message_box(parent: QWidget, title: str, icon: QMessageBox.Icon, text: str, informative: str,
                choices: Sequence[tuple[str, QMessageBox.ButtonRole]],
                standard: QMessageBox.StandardButton) -> tuple[QMessageBox, list[QPushButton]]:
    """A message box with its title, icon, main text and explanation, a button per (label, role) of ``choices``
    and then the ``standard`` one (Close, Cancel); it returns the box, not yet shown, and the choices' buttons."""
    box = QMessageBox(parent)
    box.setWindowTitle(title)
    box.setIcon(icon)
    box.setText(text)
    box.setInformativeText(informative)
    buttons = [box.addButton(label, role) for label, role in choices]
    box.addButton(standard)
    return box, buttons
