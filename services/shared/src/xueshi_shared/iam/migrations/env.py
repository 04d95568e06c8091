from xueshi_shared.iam.models import SCHEMA, Base
from xueshi_shared.migrations import run_env

run_env(SCHEMA, Base.metadata)
