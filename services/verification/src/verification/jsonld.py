"""JSON-LD processing with the contexts bundled in `contexts/`: never a network fetch.

`canonicalize` gives the RDFC-1.0 (URDNA2015) N-Quads that Data Integrity signs. `check_fully_defined`
refuses documents whose expansion would drop a property: an undefined term is not signed, so it could
be changed without breaking the proof.
"""

from __future__ import annotations

import importlib.resources
import json
from functools import cache
from typing import Any

from pyld import jsonld

__all__ = ["UndefinedTerms", "canonicalize", "check_fully_defined", "context_document", "document_loader"]


class UndefinedTerms(ValueError):
    def __init__(self, terms: list[str]):
        super().__init__(f"terms not defined by the document's contexts: {', '.join(sorted(set(terms)))}")
        self.terms = terms


@cache
def _contexts() -> dict[str, Any]:
    folder = importlib.resources.files(__package__) / "contexts"
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    return {url: json.loads((folder / name).read_text(encoding="utf-8")) for url, name in index.items()}


def context_document(url: str) -> Any:
    return _contexts()[url]


def document_loader(url: str, options: dict | None = None) -> dict[str, Any]:
    try:
        document = _contexts()[url]
    except KeyError:
        raise jsonld.JsonLdError(f"context {url} is not bundled; refusing to fetch it", "jsonld.LoadDocumentError",
                                 code="loading document failed") from None
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": document}


def check_fully_defined(document: dict[str, Any]) -> None:
    dropped: list[str] = []

    def on_dropped(prop: str | None) -> None:
        dropped.append(str(prop))

    processor = jsonld.JsonLdProcessor(on_property_dropped=on_dropped)
    processor.expand(document, {"documentLoader": document_loader})
    if dropped:
        raise UndefinedTerms(dropped)


def canonicalize(document: dict[str, Any]) -> str:
    return jsonld.normalize(document, {"algorithm": "URDNA2015", "format": "application/n-quads",
                                       "documentLoader": document_loader})
