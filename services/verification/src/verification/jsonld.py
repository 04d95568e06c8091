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

The fast path (`canonicalize`): pyoxigraph (Oxigraph's Rust RDF toolkit) turns the document, its bundled
contexts inlined, into RDF and canonicalizes it with RDFC-1.0, about three times faster than pyld. It is taken
only where RDFC-1.0 needs no N-degree hashing (every blank node told apart by its own quads, as in every
credential this registry issues), so its cost is linear; any other document goes through the bounded pyld
algorithm above. A differential test (hypothesis-built credentials, and every fixture) holds the fast path to
pyld's output byte for byte. `check_fully_defined` remembers the documents' shapes it has accepted: which terms
expansion drops depends only on the keys, their nesting and the types, never on the other values.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import pyoxigraph as ox
from pyld import jsonld
from pyld.canon import URDNA2015

__all__ = ["Limits", "TooComplex", "UndefinedTerms", "canonicalize", "canonicalize_pyld", "check_fully_defined",
           "check_shape", "context_document", "document_loader"]


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


_TYPE_KEYS = frozenset({"@type", "type", "@context"})
_ACCEPTED_SHAPES: dict[str, None] = {}
_SHAPES_KEPT = 4096


def _shape(value: Any, key: str | None = None) -> Any:
    """What expansion's dropping of terms depends on: every key and the nesting, the values of types and contexts;
    any other value only by its JSON type."""
    if isinstance(value, dict):
        return {k: _shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v, key) for v in value]
    if key in _TYPE_KEYS:
        return value
    return type(value).__name__


def check_fully_defined(document: dict[str, Any]) -> None:
    shape = json.dumps(_shape(document), sort_keys=False, ensure_ascii=False, separators=(",", ":"))
    if shape in _ACCEPTED_SHAPES:
        return
    _check_fully_defined(document)
    if len(_ACCEPTED_SHAPES) >= _SHAPES_KEPT:
        _ACCEPTED_SHAPES.pop(next(iter(_ACCEPTED_SHAPES)))
    _ACCEPTED_SHAPES[shape] = None


def _check_fully_defined(document: dict[str, Any]) -> None:
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


def _inlined(document: dict[str, Any]) -> bytes | None:
    """The document with its bundled contexts inlined (Oxigraph fetches nothing), or None if it names another."""
    contexts = document.get("@context")
    if not isinstance(contexts, list) or not contexts or not all(isinstance(c, str) for c in contexts):
        return None
    known = _contexts()
    if not all(c in known and isinstance(known[c], dict) and "@context" in known[c] for c in contexts):
        return None
    if _has_double(document):
        return None  # JSON numbers that become xsd:double: the two write their canonical forms differently
    text = json.dumps(document, ensure_ascii=False)
    if _CONTROL.search(text):
        return None  # control characters: Oxigraph escapes them as RDF 1.2 asks, pyld (and what it signed) not
    return json.dumps({**document, "@context": [known[c]["@context"] for c in contexts]},
                      ensure_ascii=False).encode()


def _has_double(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float) or (isinstance(item, int) and not isinstance(item, bool) and (
                abs(item) >= 10**21 or not -2**63 <= item < 2**64)):
            # (Oxigraph reads an integer beyond 64 bits as a double; pyld keeps it an xsd:integer)
            return True
    return False


# Control characters (as json.dumps writes them) in any string of a document.
_CONTROL = re.compile(r"\\u00[01][0-9a-fA-F]|\\u007[fF]|\\[btnfr]|\x7f")


def _term(term: Any) -> str:
    return "_:" if isinstance(term, ox.BlankNode) else str(term)


# Blank nodes whose own quads are alike (told apart only through their neighbours, as the cells of two lists of
# allowed values are) that the fast path takes; beyond, the bounded pyld algorithm decides.
FAST_ALIKE = 100


def _blank_nodes_told_apart(dataset: ox.Dataset) -> bool:
    """Whether RDFC-1.0 stays cheap on `dataset`: each blank node is told apart by its own quads (other blank
    nodes as "_:z", itself as "_:a", as RDFC-1.0 first hashes them), or, for at most FAST_ALIKE of them, through
    neighbours of which no two are alike. Then the N-degree step never tries more than one order of anything (its
    factorial cost lies in permuting alike neighbours) and Oxigraph's unbounded implementation may run it."""
    own: dict[str, list[tuple[str, ...]]] = {}
    neighbours: dict[str, set[str]] = {}
    for quad in dataset:
        terms = (quad.subject, quad.predicate, quad.object, quad.graph_name)
        blank = [t.value for t in terms if isinstance(t, ox.BlankNode)]
        for node in blank:
            own.setdefault(node, []).append(tuple(
                ("_:a" if t.value == node else "_:z") if isinstance(t, ox.BlankNode) else str(t) for t in terms))
            neighbours.setdefault(node, set()).update(b for b in blank if b != node)
    signature = {node: tuple(sorted(quads)) for node, quads in own.items()}
    count: dict[tuple, int] = {}
    for sig in signature.values():
        count[sig] = count.get(sig, 0) + 1
    alike = [node for node, sig in signature.items() if count[sig] > 1]
    if not alike:
        return True
    if len(alike) > FAST_ALIKE:
        return False
    for node in alike:
        seen: set[tuple] = set()
        for other in neighbours[node]:
            if signature[other] in seen:
                return False
            seen.add(signature[other])
    return True


def canonicalize(document: dict[str, Any], limits: Limits = LIMITS) -> str:
    """RDFC-1.0 N-Quads of `document` (what jsonld.normalize with URDNA2015 gives), or TooComplex."""
    check_shape(document, limits)
    inlined = _inlined(document)
    if inlined is not None:
        try:
            dataset = ox.Dataset(ox.parse(inlined, ox.RdfFormat.JSON_LD))
        except (SyntaxError, ValueError):
            dataset = None  # pyld says what is wrong, as before
        if dataset is not None and len(dataset) <= limits.quads and _blank_nodes_told_apart(dataset):
            dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
            return "".join(sorted(f"{quad} .\n" for quad in dataset))
    return canonicalize_pyld(document, limits)


def canonicalize_pyld(document: dict[str, Any], limits: Limits = LIMITS) -> str:
    """The same N-Quads by pyld and the bounded URDNA2015 (for any document, and the reference of the fast path)."""
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
