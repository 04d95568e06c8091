from xueshi_shared.migrations import run_env

from hours_ledger.models import SCHEMA, Base

run_env(SCHEMA, Base.metadata)
