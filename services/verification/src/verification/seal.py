"""The visible seal (印章) of a stamping body, drawn as an image.

The Chinese text is rasterised here with a small subset font shipped in `assets/` (WenQuanYi Micro Hei,
Apache-2.0), so signing never subsets a CJK font (hundreds of milliseconds) and the PDF needs no embedded
CJK font for its seal. Images are cached per body name.
"""

from __future__ import annotations

import importlib.resources
import io
import math
from functools import cache

from PIL import Image, ImageDraw, ImageFont

__all__ = ["seal_png"]

RED = (200, 16, 30, 255)
SIZE = 420


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    path = importlib.resources.files(__package__) / "assets" / "seal-font.ttf"
    with importlib.resources.as_file(path) as real:
        return ImageFont.truetype(str(real), size)


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float) -> None:
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.38
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    draw.polygon(points, fill=RED)


def _char(ch: str, size: int, angle: float) -> Image.Image:
    tile = Image.new("RGBA", (size * 2, size * 2), (0, 0, 0, 0))
    ImageDraw.Draw(tile).text((size, size), ch, font=_font(size), fill=RED, anchor="mm")
    return tile.rotate(angle, resample=Image.Resampling.BICUBIC)


@cache
def seal_png(name: str, caption: str = "学时验印专用章") -> bytes:
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    c = SIZE / 2
    draw.ellipse((8, 8, SIZE - 8, SIZE - 8), outline=RED, width=12)
    _star(draw, c, c, 62)
    # The name runs clockwise along the upper arc, from about 8 o'clock to 4 o'clock.
    size = 50 if len(name) <= 14 else 40
    span = min(250.0, 19.0 * len(name))
    radius = c - 60
    for i, ch in enumerate(name):
        theta = -90 - span / 2 + span * (i + 0.5) / len(name)  # degrees, 0 = 3 o'clock
        x = c + radius * math.cos(math.radians(theta))
        y = c + radius * math.sin(math.radians(theta))
        tile = _char(ch, size, -(theta + 90))
        image.alpha_composite(tile, (int(x - tile.width / 2), int(y - tile.height / 2)))
    draw.text((c, c + 105), caption, font=_font(34), fill=RED, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
