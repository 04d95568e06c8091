"""Catalog service: plans and topics, authorities and fields, training bases, courses."""
