"""Catalog service: plans and topics, authorities and fields, training bases, courses."""

from xueshi_shared.migrations import History

__all__ = ["HISTORY"]

# The service's own migration history: its schema, catalog.
HISTORY = History("catalog", "catalog", reference_loader="catalog.reference:load")
