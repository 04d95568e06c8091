"""Identity and access: principals (staff and training bases), bearer tokens, the audit trail.

The `iam` schema is owned by this library rather than by one service, because one token must work on
all three services and every service must record authentication failures. Services touch it only
through the functions here.
"""
