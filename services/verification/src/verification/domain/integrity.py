"""Data Integrity proofs, cryptosuite eddsa-rdfc-2022 (W3C VC Data Integrity EdDSA Cryptosuites v1.0).

hashData = SHA-256(canonical proof configuration) || SHA-256(canonical unsecured document);
proofValue = base58btc multibase of the Ed25519 signature over hashData. Canonicalisation (RDFC-1.0) is
passed in, so this module stays free of I/O and of the JSON-LD machinery.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .encoding import multibase_b58, unmultibase_b58

__all__ = ["proof_config", "sign", "verify"]

Canonicalize = Callable[[dict[str, Any]], str]


def proof_config(context: Any, verification_method: str, created: str) -> dict[str, Any]:
    return {"@context": context, "type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022",
            "created": created, "verificationMethod": verification_method, "proofPurpose": "assertionMethod"}


def _hash_data(document: dict[str, Any], config: dict[str, Any], canonicalize: Canonicalize) -> bytes:
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    return (hashlib.sha256(canonicalize(config).encode()).digest()
            + hashlib.sha256(canonicalize(unsecured).encode()).digest())


def sign(document: dict[str, Any], key: Ed25519PrivateKey, verification_method: str, created: str,
         canonicalize: Canonicalize) -> dict[str, Any]:
    config = proof_config(document["@context"], verification_method, created)
    signature = key.sign(_hash_data(document, config, canonicalize))
    proof = {k: v for k, v in config.items() if k != "@context"}
    proof["proofValue"] = multibase_b58(signature)
    return {**document, "proof": proof}


def verify(document: dict[str, Any], public_key: Ed25519PublicKey, canonicalize: Canonicalize) -> tuple[bool, str]:
    proof = document.get("proof")
    if not isinstance(proof, dict):
        return False, "the credential carries no proof"
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != "eddsa-rdfc-2022":
        return False, "not an eddsa-rdfc-2022 Data Integrity proof"
    if proof.get("proofPurpose") != "assertionMethod":
        return False, "the proof's purpose is not assertionMethod"
    config = {"@context": document.get("@context"), **{k: v for k, v in proof.items() if k != "proofValue"}}
    try:
        signature = unmultibase_b58(str(proof.get("proofValue", "")))
        public_key.verify(signature, _hash_data(document, config, canonicalize))
    except (InvalidSignature, ValueError):
        return False, "the signature does not match the document"
    return True, "the signature matches the document and the issuer's key"
