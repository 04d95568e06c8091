"""One person, one name: when two names are the same name, and how a name is shown masked. Pure, stdlib only.

Names are compared as people write them, not byte by byte: Unicode compatibility forms folded (full-width
letters, NFKC), runs of spaces as one, surrounding spaces dropped, Latin letters without case, and the middle
dot of minority and foreign names (阿依古丽·买买提) whichever of its look-alikes was typed (· • ‧ ・ ⋅ ∙), with no
space around it. Anything else is a different name.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["mask_name", "same_name"]

_DOTS = re.compile(r"\s*[\u00b7\u2022\u2027\u30fb\u22c5\u2219]\s*")
_SPACES = re.compile(r"\s+")


def _canonical(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name)
    folded = _DOTS.sub("\u00b7", folded)
    return _SPACES.sub(" ", folded).strip().casefold()


def same_name(a: str, b: str) -> bool:
    return a == b or _canonical(a) == _canonical(b)


def mask_name(name: str) -> str:
    """The first and last character, the rest masked: 陈*明, 欧**明, 陈* (two characters keep the first only)."""
    name = name.strip()
    if len(name) <= 1:
        return "*" * len(name)
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
