"""The ledger's xAPI door (issue 18, in progress): statements, validated as xAPI 1.0.3 says (validation.py)."""
