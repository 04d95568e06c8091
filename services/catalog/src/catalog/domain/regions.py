"""Region rules for training bases: which codes a base level may carry and what it may train.

Fujian's province, nine cities and Pingtan, and every county-level code in force, come from
`xueshi_shared.regions` (GB/T 2260). National bases may sit anywhere in China: any province-level prefix is
accepted.
"""

from __future__ import annotations

from xueshi_shared.problems import FieldError
from xueshi_shared.regions import PINGTAN, PROVINCE, REGIONS, level_of, within

__all__ = ["LEVELS", "base_region_errors", "is_county", "within"]

LEVELS = ("national", "provincial", "municipal", "county")

# GB/T 2260 province-level prefixes (mainland, Taiwan, Hong Kong, Macao).
_PROVINCE_PREFIXES = {
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43",
    "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
}
CITIES = frozenset(c for c in REGIONS if c != PROVINCE)


def is_county(code: str) -> bool:
    """A county-level code of Fujian in force, Pingtan excepted (it is governed like a city)."""
    return level_of(code) == "county" and code != PINGTAN


def base_region_errors(level: str, region: str, scope_region: str) -> list[FieldError]:
    errors: list[FieldError] = []
    six_digits = len(region) == 6 and region.isdigit()
    if level == "national":
        if not (six_digits and region[:2] in _PROVINCE_PREFIXES):
            errors.append(FieldError("region", "region-code", "a national base's region must be a GB/T 2260 code"))
    elif level == "provincial":
        if region != PROVINCE:
            errors.append(FieldError("region", "base-level-region", "a provincial base's region is 350000 (福建省)"))
    elif level == "municipal":
        if region not in CITIES:
            errors.append(FieldError(
                "region", "base-level-region",
                f"a municipal base's region is a city code ({', '.join(sorted(CITIES))}); {PINGTAN} is Pingtan"))
    elif level == "county":
        if not is_county(region):
            errors.append(FieldError("region", "base-level-region", "a county base's region is a county code of Fujian"))

    if scope_region not in REGIONS and not is_county(scope_region):
        errors.append(FieldError("scope_region", "region-code",
                                 "the training scope is 350000 (全省), a city code, or a county code of Fujian"))
    elif level in ("municipal", "county") and not errors and not within(scope_region, region):
        errors.append(FieldError("scope_region", "scope-outside-region",
                                 f"a {level} base in {region} cannot train beyond its own region"))
    return errors
