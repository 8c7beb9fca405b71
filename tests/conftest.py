"""Shared fixtures. Tiny real datasets only; each helper adds its fixtures below its own heading."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest

from studio.data import AttributedDataset, open_dataset

# --- data ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_fonts() -> AttributedDataset:
    """fonts:tiny at 32 px (240 items); shared by the whole session, so never mutate it."""
    return open_dataset("fonts:tiny,res=32")


@pytest.fixture(scope="session")
def tiny_shapes() -> AttributedDataset:
    """shapes:tiny at 32 px (288 items); shared by the whole session, so never mutate it."""
    return open_dataset("shapes:tiny,res=32")


@pytest.fixture
def tmp_folder_dataset(tmp_path: Path, tiny_fonts: AttributedDataset) -> Path:
    """A folder (PNG files + attributes.csv) exported from fonts:tiny at 32 px; the test may edit it."""
    from studio.data.export import export_dataset

    return export_dataset(tiny_fonts, tmp_path / "fonts_tiny", progress=False)
