"""Verification service: stamps, stamped electronic study proofs, verification."""
