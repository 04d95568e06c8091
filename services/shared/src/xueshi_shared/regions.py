"""Fujian's region codes (GB/T 2260) and which HR bureau governs a code.

Two lists:
- `REGIONS`: the province and the eleven HR bureaus' regions (the nine cities and Pingtan), which staff are
  scoped to (`GET /v1/regions`);
- `CODES`: every code in force in Fujian (`regions.json`, made by `tools/make_regions.py` from the GB/T 2260
  data python-stdnum carries): the province (省直单位), the cities and the 84 county-level divisions. A unit's
  region and a base's region and scope are checked against it (`GET /v1/region-codes`).

Pingtan (平潭综合实验区) is the county 350128 of Fuzhou in GB/T 2260 but is administered at the
prefecture level with its own HR department (the notices name it beside the nine cities), so a
Fuzhou city_admin (350100) does not govern 350128; a Pingtan city_admin does.
"""

from __future__ import annotations

import importlib.resources
import json

__all__ = ["CODES", "PINGTAN", "PROVINCE", "REGIONS", "governing_region", "is_fujian_code", "level_of", "within"]

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

CODES: dict[str, str] = json.loads(
    (importlib.resources.files(__package__) / "regions.json").read_text(encoding="utf-8"))["regions"]


def governing_region(code: str) -> str | None:
    """The prefecture-level region (or the province) that governs a 6-digit Fujian code, else None."""
    if len(code) != 6 or not code.isdigit() or not code.startswith("35"):
        return None
    if code == PROVINCE or code == PINGTAN:
        return code
    prefecture = code[:4] + "00"
    return prefecture if prefecture in REGIONS else None


def is_fujian_code(code: str) -> bool:
    """Whether `code` is a GB/T 2260 code in force in Fujian (the province, a city or a county)."""
    return code in CODES


def level_of(code: str) -> str | None:
    """`province`, `city` (the nine cities) or `county` for a code in force in Fujian, else None."""
    if code not in CODES:
        return None
    if code == PROVINCE:
        return "province"
    return "city" if code.endswith("00") else "county"


def within(code: str, region: str) -> bool:
    """Whether the Fujian code `code` lies inside `region` (the province contains every code of Fujian; a city its
    counties but not Pingtan, which has its own bureau; a county itself only)."""
    if not is_fujian_code(code):
        return False
    if region == PROVINCE:
        return True
    if region in REGIONS:
        return governing_region(code) == region
    return code == region
