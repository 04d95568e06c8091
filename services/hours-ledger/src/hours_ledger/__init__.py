"""Hours-ledger service: study records, the province's rules across all bases, transcripts."""

from xueshi_shared.migrations import History

__all__ = ["HISTORY"]

# The service's own migration history: its schema, hours_ledger.
HISTORY = History("hours_ledger", "hours_ledger")
