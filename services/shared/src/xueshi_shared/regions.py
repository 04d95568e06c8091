"""Fujian's region codes (GB/T 2260) and which HR bureau governs a code.

Pingtan (平潭综合实验区) is the county 350128 of Fuzhou in GB/T 2260 but is administered at the
prefecture level with its own HR department (the notices name it beside the nine cities), so a
Fuzhou city_admin (350100) does not govern 350128; a Pingtan city_admin does.
"""

from __future__ import annotations

__all__ = ["PROVINCE", "REGIONS", "governing_region", "is_fujian_code"]

PROVINCE = "350000"
PINGTAN = "350128"

REGIONS: dict[str, str] = {
    "350000": "福建省",
    "350100": "福州市",
    "350200": "厦门市",
    "350300": "莆田市",
    "350400": "三明市",
    "350500": "泉州市",
    "350600": "漳州市",
    "350700": "南平市",
    "350800": "龙岩市",
    "350900": "宁德市",
    PINGTAN: "平潭综合实验区",
}


def governing_region(code: str) -> str | None:
    """The prefecture-level region (or the province) that governs a 6-digit Fujian code, else None."""
    if len(code) != 6 or not code.isdigit() or not code.startswith("35"):
        return None
    if code == PROVINCE or code == PINGTAN:
        return code
    prefecture = code[:4] + "00"
    return prefecture if prefecture in REGIONS else None


def is_fujian_code(code: str) -> bool:
    return governing_region(code) is not None
