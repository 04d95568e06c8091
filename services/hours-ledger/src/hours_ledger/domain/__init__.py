"""Pure rules of the ledger: no I/O. The place to read the policy."""
