"""JSON-LD processing with the contexts bundled in `contexts/`: never a network fetch.

`canonicalize` gives the RDFC-1.0 (URDNA2015) N-Quads that Data Integrity signs. `check_fully_defined`
refuses documents whose expansion would drop a property: an undefined term is not signed, so it could
be changed without breaking the proof.

RDFC-1.0 costs factorially in groups of blank nodes it cannot tell apart (seven mutually linked blank nodes, a
1.3 KB document, took 6.4 s here; RDFC-1.0 §4.4 asks implementations to bound it, pyld does not). `canonicalize`
refuses a document beyond `Limits` before and while it works (`TooComplex`): its size, depth and JSON objects
before anything is expanded; its quads and blank nodes once it is RDF; and, in the algorithm itself, the largest
group of indistinguishable blank nodes it would permute, the N-degree hashes it computes, and a time budget.
A credential of this registry needs a small fraction of each.
"""

from __future__ import annotations

import importlib.resources
import json
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from pyld import jsonld
from pyld.canon import URDNA2015

__all__ = ["Limits", "TooComplex", "UndefinedTerms", "canonicalize", "check_fully_defined", "check_shape",
           "context_document", "document_loader"]


class TooComplex(Exception):
    """The document is beyond what canonicalization may cost (`Limits`)."""


@dataclass(frozen=True)
class Limits:
    json_bytes: int = 64 * 1024
    depth: int = 24
    json_objects: int = 1_000
    quads: int = 2_000
    blank_nodes: int = 500
    # Indistinguishable blank nodes RDFC-1.0 would try in every order (4! = 24 orders at most).
    permuted_group: int = 4
    n_degree_hashes: int = 200
    seconds: float = 1.0


LIMITS = Limits()


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


def check_shape(document: Any, limits: Limits = LIMITS) -> None:
    """Refuse a document too large or too deep to be worth expanding: bytes, depth, JSON objects."""
    if len(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()) > limits.json_bytes:
        raise TooComplex(f"the document is larger than {limits.json_bytes} bytes")
    objects = 0
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limits.depth:
            raise TooComplex(f"the document is nested deeper than {limits.depth} levels")
        if isinstance(value, dict):
            objects += 1
            pending.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            pending.extend((v, depth + 1) for v in value)
        if objects > limits.json_objects:
            raise TooComplex(f"the document holds more than {limits.json_objects} JSON objects")


class _BoundedURDNA2015(URDNA2015):
    """pyld's URDNA2015, the same output, with the work RDFC-1.0 §4.4 asks to bound counted and bounded."""

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.n_degree = 0

    def _in_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TooComplex(f"canonicalization took longer than {self.limits.seconds} s")

    def hash_first_degree_quads(self, id_):  # type: ignore[no-untyped-def]
        self._in_time()
        return super().hash_first_degree_quads(id_)

    def create_hash_to_related(self, id_, issuer):  # type: ignore[no-untyped-def]
        self._in_time()
        related = super().create_hash_to_related(id_, issuer)
        if any(len(nodes) > self.limits.permuted_group for nodes in related.values()):
            raise TooComplex(f"more than {self.limits.permuted_group} blank nodes that only their order could tell "
                             "apart")
        return related

    def hash_n_degree_quads(self, id_, issuer):  # type: ignore[no-untyped-def]
        self.n_degree += 1
        if self.n_degree > self.limits.n_degree_hashes:
            raise TooComplex(f"more than {self.limits.n_degree_hashes} N-degree hashes")
        self._in_time()
        return super().hash_n_degree_quads(id_, issuer)


def canonicalize(document: dict[str, Any], limits: Limits = LIMITS) -> str:
    """RDFC-1.0 N-Quads of `document` (what jsonld.normalize with URDNA2015 gives), or TooComplex."""
    check_shape(document, limits)
    options = {"base": "", "documentLoader": document_loader, "extractAllScripts": True,
               "processingMode": "json-ld-1.1", "produceGeneralizedRdf": False,
               "contextResolver": jsonld.ContextResolver(jsonld._resolved_context_cache, document_loader)}
    try:
        dataset = jsonld.JsonLdProcessor().to_rdf(document, options)
    except jsonld.JsonLdError as cause:
        raise jsonld.JsonLdError("Could not convert input to RDF dataset before normalization.",
                                 "jsonld.NormalizeError") from cause
    quads = [q for triples in dataset.values() for q in triples]
    if len(quads) > limits.quads:
        raise TooComplex(f"the document makes more than {limits.quads} RDF statements")
    blank = {c["value"] for q in quads for k, c in q.items() if k != "predicate" and c["type"] == "blank node"}
    if len(blank) > limits.blank_nodes:
        raise TooComplex(f"the document makes more than {limits.blank_nodes} blank nodes")
    return _BoundedURDNA2015(limits).main(dataset, {"format": "application/n-quads"})
