from xueshi_shared.migrations import run_env

from catalog.models import SCHEMA, Base

run_env(SCHEMA, Base.metadata)
