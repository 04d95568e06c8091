from xueshi_shared.migrations import run_env

from verification.models import SCHEMA, Base

run_env(SCHEMA, Base.metadata)
