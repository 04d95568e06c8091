"""Writes services/shared/src/xueshi_shared/regions.json: Fujian's GB/T 2260 codes in force, from python-stdnum's
region data (the same data the resident ID check uses for codes that ever existed).

Run it after python-stdnum's data changes (a district created or merged), review the diff, and commit it:

    .venv/bin/python tools/make_regions.py

Kept: the province (350000: 省直单位), the nine cities and every county-level code whose latest name has no end
year. Left out: 市辖区 (xx01: no unit lies in "the city's districts" as such).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from stdnum import numdb

OUT = Path(__file__).resolve().parents[1] / "services/shared/src/xueshi_shared/regions.json"
_SPAN = re.compile(r"^\[(\d*)-(\d*)\](.*)$")


def current_fujian_codes() -> dict[str, str]:
    codes: dict[str, str] = {}
    for _, low, high, _, children in numdb.get("cn/loc").prefixes:
        if not int(low) <= 35 <= int(high):
            continue
        for length, c_low, c_high, props, _ in children:
            latest = props.get("county", "").split(",")[-1]
            if length != 4 or not latest:
                continue
            span = _SPAN.match(latest)
            if span and span.group(2):
                continue  # abolished
            name = span.group(3) if span else latest
            for n in range(int(c_low), int(c_high) + 1):
                code = f"35{n:04d}"
                if name != "市辖区":
                    codes[code] = name
    return dict(sorted(codes.items()))


def main() -> None:
    document = {"source": "GB/T 2260, as python-stdnum's cn/loc data holds it (codes in force)",
                "regions": current_fujian_codes()}
    OUT.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(document['regions'])} codes")


if __name__ == "__main__":
    main()
