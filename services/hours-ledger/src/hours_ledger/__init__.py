"""Hours-ledger service: study records, the province's rules across all bases, transcripts."""
