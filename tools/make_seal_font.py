"""Build the seal font: a subset of WenQuanYi Micro Hei (Apache-2.0) holding only the characters that
seals print (every stamping body's name and the fixed seal text). Run after the authority directory
changes; needs Debian's fonts-wqy-microhei and fonttools.

    python tools/make_seal_font.py
"""

from __future__ import annotations

import json
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
OUT = ROOT / "services/verification/src/verification/assets/seal-font.ttf"
FIXED = "继续教育学时验印专用章福建省人力资源和社会保障厅局平潭综合实验区党群工作部0123456789"


def main() -> None:
    directory = json.loads((ROOT / "services/catalog/src/catalog/reference/authorities.json").read_text())
    regions = "福州市厦门市莆田市三明市泉州市漳州市南平市龙岩市宁德市"
    text = FIXED + regions + "".join("福建" + a["name"] for a in directory["authorities"])
    font = TTCollection(str(SOURCE)).fonts[0]
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    font.save(str(OUT))
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes, {len(set(text))} characters)")


if __name__ == "__main__":
    main()
