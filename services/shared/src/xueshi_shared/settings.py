"""Settings, read once by whoever builds an app or runs a command (never at import time)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "project_dir"]


def project_dir() -> Path:
    """The directory `make run` and every `xueshi` command work from (holds `.data/`)."""
    return Path(os.environ.get("XUESHI_PROJECT_DIR", os.getcwd())).resolve()


class Settings(BaseSettings):
    """Environment variables with the prefix `XUESHI_` (e.g. `XUESHI_CATALOG_PORT=9001`)."""

    model_config = SettingsConfigDict(env_prefix="XUESHI_", extra="ignore")

    # Where the database is. Empty means: the embedded PostgreSQL under `data_dir`.
    # The plain `DATABASE_URL` variable is honoured too (see `resolve_database_url`).
    database_url: str = ""
    data_dir: Path = Field(default_factory=lambda: project_dir() / ".data")

    host: str = "127.0.0.1"
    catalog_port: int = 8001
    ledger_port: int = 8002
    verification_port: int = 8003
    # The address the public reaches the services under (printed in URLs, QR codes, did:web).
    public_base_url: str = ""

    # Master key protecting personal ID numbers (32 bytes, base64). Empty: read `data_dir/pii.key`, which
    # `xueshi run` creates on the first start. Losing it makes stored ID numbers unreadable.
    pii_key: str = ""

    # Requests a minute per bearer token and process (429 with Retry-After beyond); 0 turns it off.
    rate_limit_per_minute: int = 12_000
    # Per client address (the peer, or the client a trusted proxy names: FORWARDED_ALLOW_IPS) and process, a
    # minute, 429 with Retry-After beyond; 0 turns a limit off. Public requests (verification, proofs, the page,
    # status lists, DID documents); holder confirmations (an ID number checked against a proof); failed
    # authentications (beyond it they are refused without an audit event each, so that nobody can flood the
    # trail that the database keeps for six months).
    public_rate_limit_per_minute: int = Field(default=600, ge=0)
    holder_checks_per_minute: int = Field(default=10, ge=0)
    # Identity pre-checks (POST /v1/people/check) a training base's key may make a minute: enough for a base
    # checking its trainees as they enrol; a whole roster is checked by the roster upload's dry run.
    people_checks_per_minute: int = Field(default=60, ge=0)
    failed_auth_per_minute: int = Field(default=30, ge=0)
    # Failed holder confirmations one proof allows a day, from all clients together (then 429): a budget no
    # number of addresses can multiply.
    holder_failures_per_proof_per_day: int = Field(default=10, ge=1)
    # How often the verification service sweeps the ledger's reversals and supersedes the proofs that covered the
    # reversed records (their status bits set). Reads of a proof (verification, the page, lists) check it at once
    # whatever this is; 0 turns the sweep off (the tests run it by hand).
    supersede_seconds: float = Field(default=10, ge=0)
    # uvicorn worker processes per service (`xueshi serve`); each has its own connection pool.
    workers: int = 1

    log_level: str = "INFO"
    # Bodies above this size are refused with 413 before they are parsed.
    max_body_bytes: int = 8 * 1024 * 1024
    # A roster upload (POST /v1/rosters): the file's size, and its rows (one per sitting).
    roster_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    roster_max_rows: int = Field(default=200_000, ge=1)
    # How often the statistics fold (`xueshi serve statistics-fold`) folds queued changes into the counters (each
    # statistics request folds what it can too), unless intake is busy: more than statistics_fold_busy_per_second
    # changes queued a second since it last looked. Then it leaves the burst alone, until two looks in a row find
    # intake quiet (statistics.QUIET_LOOKS), for at most
    # statistics_fold_most_lag_seconds: folding beside a burst takes the CPU the pushes need (bench/ledger.py).
    statistics_fold_seconds: float = Field(default=1.0, gt=0)
    statistics_fold_busy_per_second: float = Field(default=200.0, gt=0)
    statistics_fold_most_lag_seconds: float = Field(default=60.0, gt=0)
    # How much the fold process lowers its CPU priority (nice): intake first; 0 leaves it as it is.
    statistics_fold_nice: int = Field(default=10, ge=0, le=19)
    # The xAPI version the LRS (/xapi/) answers in when a request names none (the about resource, a refusal).
    xapi_default_version: Literal["1.0.3", "2.0.0"] = "1.0.3"
    db_pool_size: int = 10
    db_max_overflow: int = 10
    # How long a request waits for a pooled connection before it is answered 503 database-busy (Retry-After).
    db_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    # Single pushes are written in groups (hours_ledger/groupcommit.py): at most this many groups at once
    # per ledger process. More overlaps more round trips; each group holds one connection while it writes.
    push_writers: int = Field(default=2, ge=1, le=64)
    # Most single pushes one group holds; 1 turns grouping off (every push its own transaction).
    push_group_size: int = Field(default=50, ge=1, le=1000)
    # How long /readyz waits for the database before answering 503.
    readiness_timeout_seconds: float = 2.0
    # The garbage collector's thresholds once a service has started ("gen0,gen1,gen2"; empty: Python's own,
    # 2000,10,10). A request allocates thousands of objects, nearly all freed at once by reference counting,
    # yet each 2,000 allocations cost a collection: measured, the defaults took a third of the batch
    # endpoint's CPU. See app.py's tune_garbage_collector.
    gc_thresholds: str = Field(default="50000,20,100", pattern=r"^(\d+,\d+,\d+)?$")

    def verification_url(self) -> str:
        """The public address of the verification service (did:web identifiers, QR codes, status lists)."""
        return (self.public_base_url or f"http://{self.host}:{self.verification_port}").rstrip("/")

    def effective_database_url(self) -> str:
        return self.database_url or os.environ.get("DATABASE_URL", "")
