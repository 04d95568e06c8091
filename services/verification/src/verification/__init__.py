"""Verification service: stamps, stamped electronic study proofs, verification."""

from xueshi_shared.migrations import History

__all__ = ["HISTORY"]

# The service's own migration history: its schema, verification.
HISTORY = History("verification", "verification")
