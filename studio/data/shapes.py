"""A dSprites-like Shapes dataset (paper 000, appendix C), with colour and background colour added.

Every combination of shape, scale, rotation, x and y position, shape colour and background colour (colour never
equal to background) is one item, drawn on demand with Pillow: polygons are filled at ``SUPERSAMPLE`` times the
resolution and box-filtered down, which anti-aliases edges and gives the same pixels wherever the same Pillow runs.

Rotations stay inside [0°, 90°): dSprites turns every shape through a full circle, so a square at 0° and at 90°
are the same image under two different labels. Below 90° every shape here looks different at every angle.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from studio.data.dataset import AttributedDataset
from studio.data.fonts import COLORS
from studio.data.schema import Attribute, AttributeSchema
from studio.errors import DatasetError

# Bump whenever the geometry or the drawing changes: it is part of the fingerprint.
RENDERER_VERSION = "shapes-1"
SUPERSAMPLE = 4
# Radius of the circle around a shape at scale 1.0, as a fraction of the canvas; positions keep it inside.
MAX_RADIUS = 0.25


@dataclass(frozen=True)
class ShapesPreset:
    shapes: tuple[str, ...]
    scales: tuple[float, ...]
    rotations: tuple[int, ...]  # degrees, counter-clockwise as seen on screen
    positions: tuple[float, ...]  # centre as a fraction of the canvas, the same list for x and y
    colors: tuple[str, ...]
    background_colors: tuple[str, ...]


def _positions(count: int) -> tuple[float, ...]:
    return tuple(round(float(p), 4) for p in np.linspace(MAX_RADIUS, 1.0 - MAX_RADIUS, count))


PRESETS: dict[str, ShapesPreset] = {
    # 5 x 6 x 9 x 8 x 8 x 20 colour pairs = 345,600 items, about the size of the full Fonts set.
    "full": ShapesPreset(
        ("square", "ellipse", "triangle", "heart", "cross"), (0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        tuple(range(0, 90, 10)), _positions(8),
        ("red", "yellow", "green", "blue", "silver"), ("red", "yellow", "green", "blue", "silver"),
    ),
    # 4 x 3 x 3 x 4 x 4 x 6 = 3,456 items: trains on a CPU in minutes.
    "small": ShapesPreset(
        ("square", "ellipse", "triangle", "heart"), (0.5, 0.75, 1.0), (0, 30, 60), _positions(4),
        ("red", "green", "blue"), ("red", "green", "blue"),
    ),
    # 3 x 2 x 2 x 2 x 2 x 6 = 288 items, for tests.
    "tiny": ShapesPreset(
        ("square", "ellipse", "triangle"), (0.6, 1.0), (0, 45), _positions(2),
        ("red", "green", "blue"), ("red", "green", "blue"),
    ),
}


def _regular(count: int, radius: float = 1.0, start_deg: float = 90.0) -> np.ndarray:
    angles = np.deg2rad(start_deg + 360.0 * np.arange(count) / count)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _heart() -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, 96, endpoint=False)
    pts = np.stack([16 * np.sin(t) ** 3, 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)], 1)
    pts -= (pts.max(axis=0) + pts.min(axis=0)) / 2  # centre the bounding box
    return pts / np.linalg.norm(pts, axis=1).max()


def _cross(arm: float = 0.36) -> np.ndarray:
    a, r = arm / 2, math.sqrt(1.0 - (arm / 2) ** 2)
    return np.array([(a, r), (a, a), (r, a), (r, -a), (a, -a), (a, -r),
                     (-a, -r), (-a, -a), (-r, -a), (-r, a), (-a, a), (-a, r)])


@cache
def outline(shape: str) -> np.ndarray:
    """Vertices of ``shape`` in maths orientation (y up), centred, inside the unit circle and touching it."""
    if shape == "square":
        return _regular(4, start_deg=45.0)
    if shape == "triangle":
        return _regular(3)
    if shape == "ellipse":
        t = np.linspace(0.0, 2.0 * math.pi, 96, endpoint=False)
        return np.stack([np.cos(t), 0.5 * np.sin(t)], axis=1)
    if shape == "heart":
        return _heart()
    if shape == "cross":
        return _cross()
    raise DatasetError(f"unknown shape {shape!r}")


def _label(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else f"{x:.1f}"


class ShapesDataset(AttributedDataset):
    """Shape x scale x rotation x x-position x y-position x (colour != background colour)."""

    def __init__(self, preset: str = "small", resolution: int = 64) -> None:
        if preset not in PRESETS:
            raise DatasetError(f"unknown Shapes preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if resolution < 16:
            raise DatasetError(f"res={resolution} is too small for Shapes; use 32, 64 or 128")
        p = PRESETS[preset]
        self.preset = preset
        self._params = p
        schema = AttributeSchema((
            Attribute("shape", p.shapes),
            Attribute("scale", tuple(_label(s) for s in p.scales)),
            Attribute("rotation", tuple(str(r) for r in p.rotations)),
            Attribute("pos_x", tuple(_label(x) for x in p.positions)),
            Attribute("pos_y", tuple(_label(y) for y in p.positions)),
            Attribute("color", p.colors, tuple(COLORS[c] for c in p.colors)),
            Attribute("background_color", p.background_colors, tuple(COLORS[c] for c in p.background_colors)),
        ))
        grids = np.meshgrid(*[np.arange(a.cardinality) for a in schema], indexing="ij")
        codes = np.stack([g.reshape(-1) for g in grids], axis=1)
        fg = np.array(p.colors)[codes[:, 5]]
        bg = np.array(p.background_colors)[codes[:, 6]]
        super().__init__(f"shapes:{preset},res={resolution}", schema, codes[fg != bg], resolution)

    def _fingerprint_parts(self) -> list[str]:
        import PIL

        return [RENDERER_VERSION, f"pillow={PIL.__version__}", f"supersample={SUPERSAMPLE}",
                f"max_radius={MAX_RADIUS}", json.dumps(self.schema.to_json(), sort_keys=True),
                json.dumps([self._params.scales, self._params.positions])]

    def render_values(self, row) -> np.ndarray | None:
        shape, scale, rotation, x, y, fg, bg = (int(v) for v in row)
        p = self._params
        if p.colors[fg] == p.background_colors[bg]:
            return None
        big = self.resolution * SUPERSAMPLE
        theta = math.radians(p.rotations[rotation])
        turn = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
        pts = outline(p.shapes[shape]) @ turn * (MAX_RADIUS * p.scales[scale] * big)
        pts[:, 1] *= -1.0  # y grows downwards on screen
        pts += (p.positions[x] * big, p.positions[y] * big)
        img = Image.new("RGB", (big, big), COLORS[p.background_colors[bg]])
        ImageDraw.Draw(img).polygon([(float(a), float(b)) for a, b in pts], fill=COLORS[p.colors[fg]])
        small = img.resize((self.resolution, self.resolution), Image.Resampling.BOX)
        return np.asarray(small, dtype=np.uint8)

    def _render(self, index: int) -> np.ndarray:
        out = self.render_values(self.codes[index])
        assert out is not None
        return out
