"""Build the body font of proofs: WenQuanYi Micro Hei (Apache-2.0, Debian's fonts-wqy-microhei) cut down to the
characters of GBK (21,791 of them: every Chinese character of GB2312 and GBK, which covers names far beyond the
6,763 of GB2312) and printable ASCII, without hinting. Each PDF then embeds a subset of this font holding only
the glyphs its page uses (reportlab subsets TrueType fonts), so every viewer draws the same page.

Needs Debian's fonts-wqy-microhei and fonttools (`pip install fonttools`):

    python tools/make_body_font.py
"""

from __future__ import annotations

from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
OUT = ROOT / "services/verification/src/verification/assets/body-font.ttf"


def gbk_characters() -> str:
    out = []
    for high in range(0x81, 0xFF):
        for low in range(0x40, 0xFF):
            try:
                out.append(bytes([high, low]).decode("gbk"))
            except UnicodeDecodeError:
                pass
    return "".join(out) + "".join(chr(c) for c in range(0x20, 0x7F))


def main() -> None:
    font = TTCollection(str(SOURCE)).fonts[0]
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    options.layout_features = []
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=gbk_characters())
    subsetter.subset(font)
    font.save(str(OUT))
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
