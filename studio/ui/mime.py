"""Drag-and-drop payloads as pure functions, so they are testable without a drag (QDrag.exec cannot be driven)."""

from __future__ import annotations

import json

from PySide6.QtCore import QMimeData, QUrl

ITEMS_MIME = "application/x-attribute-studio-items"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def encode_items(indices: list[int], fingerprint: str) -> QMimeData:
    """Dataset items being dragged; the fingerprint lets a drop refuse items of another dataset."""
    mime = QMimeData()
    mime.setData(ITEMS_MIME, json.dumps({"indices": [int(i) for i in indices], "dataset": fingerprint}).encode())
    mime.setText(", ".join(f"item {int(i)}" for i in indices))
    return mime


def decode_items(mime: QMimeData) -> tuple[list[int], str] | None:
    if not mime.hasFormat(ITEMS_MIME):
        return None
    try:
        data = json.loads(bytes(mime.data(ITEMS_MIME).data()).decode())
        return [int(i) for i in data["indices"]], str(data.get("dataset", ""))
    except (ValueError, KeyError, TypeError):
        return None


def image_files(mime: QMimeData) -> list[str]:
    """Local image files among dropped URLs (from a file manager)."""
    if not mime.hasUrls():
        return []
    out = []
    for url in mime.urls():
        if isinstance(url, QUrl) and url.isLocalFile():
            path = url.toLocalFile()
            if path.lower().endswith(IMAGE_SUFFIXES):
                out.append(path)
    return out
