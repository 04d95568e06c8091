"""`xueshi roster upload` sends a roster to a running ledger from a terminal and follows it to the end."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys

import openpyxl
import sqlalchemy as sa
from hours_ledger.app import create_app as create_ledger

from tests.support.factories import approved_course, at, online_sitting, record_body, ric
from tests.support.rosters import rows_of, to_csv, to_xlsx
from tests.support.servers import serving


def _run(args: list[str], cwd, key: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUESHI_")}
    env["XUESHI_BASE_KEY"] = key  # the key stays out of the command line
    return subprocess.run([sys.executable, "-m", "xueshi.cli", "roster", "upload", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


async def test_roster_upload_from_a_terminal(settings, catalog, base, fuzhou, engine, tmp_path):
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7, code="CLI-5")
    records = [record_body(course, ric(i), [online_sitting(at("09:00"), at("14:15"))], external_id=f"T-{i}")
               for i in range(5)]
    rows = [r for rec in records for r in rows_of(rec, "CLI-5")]
    rows[4]["unit_region"] = "110101"
    (tmp_path / "roster.xlsx").write_bytes(to_xlsx(rows))
    (tmp_path / "broken.csv").write_bytes(b"who,when\nx,y\n")
    (tmp_path / "good.csv").write_bytes(to_csv(rows[:4]))
    async with serving(create_ledger(settings)) as url:
        dry = await asyncio.to_thread(_run, ["roster.xlsx", "--url", url, "--dry-run"], tmp_path, base.key)
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 0
        real = await asyncio.to_thread(_run, ["roster.xlsx", "--url", url, "--result", "answered.xlsx"], tmp_path,
                                       base.key)
        broken = await asyncio.to_thread(_run, ["broken.csv", "--url", url], tmp_path, base.key)
        again = await asyncio.to_thread(_run, ["good.csv", "--url", url], tmp_path, base.key)
    assert dry.returncode == 1, dry.stderr[-2000:]  # one row refused
    assert "(dry run)" in dry.stdout and "unit_region" in dry.stdout, dry.stdout
    assert real.returncode == 1 and "6" in real.stdout and "wrote answered.xlsx" in real.stderr
    answered = openpyxl.load_workbook(io.BytesIO((tmp_path / "answered.xlsx").read_bytes())).worksheets[0]
    assert [row[17] for row in answered.iter_rows(min_row=2, values_only=True)] == ["credited"] * 4 + ["refused"]
    assert broken.returncode == 2 and "who" in broken.stderr and "row 1" in broken.stderr
    assert again.returncode == 0, again.stderr[-2000:]  # every row replays
    assert " 4 " in again.stdout
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 4
