"""Roster benchmark: a 100,000-row roster (CSV and XLSX) uploaded to a running ledger and answered to the end,
next to the JSON batch endpoint pushing the same number of records of the same kind, measured in the same run
on the same database (the roster's promise: within the batch path's speed).

    make bench                          # embedded PostgreSQL under .data/bench
    BENCH_ROSTER_ROWS=20000 python bench/rosters.py
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hours_ledger import loadgen  # noqa: E402

from bench.common import record_results, scratch_database  # noqa: E402
from bench.ledger import Deployment  # noqa: E402
from tests.support.rosters import rows_of, to_csv, to_xlsx  # noqa: E402

console = Console()


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def push_batches(base_url: str, key: str, bodies: list[dict], size: int = 500, in_flight: int = 16) -> float:
    """The JSON batch endpoint: batches of `size`, `in_flight` at a time (as bench/ledger.py's batch run)."""
    limit = asyncio.Semaphore(in_flight)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=600, headers={"Authorization": f"Bearer {key}"}) as c:
        async def send(chunk: list[dict]) -> None:
            async with limit:
                r = await c.post("/v1/records/batch", json={"records": chunk})
            assert r.status_code == 200, r.text
        await asyncio.gather(*(send(bodies[i:i + size]) for i in range(0, len(bodies), size)))
    return len(bodies) / (time.perf_counter() - started)


async def upload(base_url: str, key: str, data: bytes, filename: str) -> tuple[float, dict]:
    """Seconds from sending the file to its last row answered, and the final view."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=600) as c:
        started = time.perf_counter()
        sent = await c.post("/v1/rosters", files={"file": (filename, data)})
        assert sent.status_code == 202, sent.text
        roster_id = sent.json()["id"]
        while True:
            view = (await c.get(f"/v1/rosters/{roster_id}", params={"limit": 0})).json()
            if view["status"] != "processing":
                break
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - started
    assert view["status"] == "done" and view["rows_done"] == view["rows_total"], view
    return seconds, view


async def main() -> dict:
    n = int(os.environ.get("BENCH_ROSTER_ROWS", "100000"))
    async with scratch_database() as url:
        deployment = Deployment(url, base64.b64encode(os.urandom(32)).decode())
        await deployment.populate(n_bases=1)
        key, courses = deployment.bases[0]
        codes = {cid: f"B0T{topic}" for cid, topic in zip(courses, ("1", "2", "3", "4", "5"), strict=True)}
        deployment.start()
        base_url = f"http://127.0.0.1:{deployment.port}"
        rng = random.Random(2027)
        bases = [loadgen.BaseKey(key, tuple(courses))]

        def records(count: int, tag: str, region: str) -> list[dict]:
            """Records of the load generator's kind, about 3,000 people of their own (ID numbers of `region`):
            each measured run starts from people without history, so that no run inherits another's."""
            from stdnum.cn import ric

            out = []
            for _, body in loadgen.make_records(bases, count, 3000, rng, tag):
                person = int(body["name"].removeprefix("学员"))
                number = f"{region}{1960 + person % 40}{1 + person % 12:02d}{1 + person % 28:02d}{person // 336:03d}"
                out.append({**body, "id_number": number + ric.calc_check_digit(number + "0")})
            return out

        def sheet_rows(bodies: list[dict]) -> list[dict]:
            return [row for body in bodies for row in rows_of(body, codes[body["course_id"]])]

        try:
            console.print("warming up: history for 3,000 people, and each door once …")
            await push_batches(base_url, key, records(3000, "history", "350102"))
            await upload(base_url, key, to_csv(sheet_rows(records(1000, "warm-csv", "350102"))), "warm.csv")
            # The JSON batch before and after the rosters (the baseline is their mean), each run with people of
            # its own.
            console.print(f"JSON batch endpoint: {n} records in batches of 500, 16 at a time …")
            batch_before = await push_batches(base_url, key, records(n, "batch", "350103"))
            console.print(f"roster, CSV: {n} rows …")
            csv_data = to_csv(sheet_rows(records(n, "csv", "350104")))
            csv_seconds, csv_view = await upload(base_url, key, csv_data, "roster.csv")
            console.print(f"roster, XLSX: {n} rows …")
            xlsx_data = to_xlsx(sheet_rows(records(n, "xlsx", "350105")))
            xlsx_seconds, xlsx_view = await upload(base_url, key, xlsx_data, "roster.xlsx")
            console.print(f"roster, CSV again ({n} rows, every one a replay) …")
            replay_seconds, replay_view = await upload(base_url, key, csv_data, "roster.csv")
            assert replay_view["counts"]["replayed"] + replay_view["counts"]["refused"] == n, replay_view["counts"]
            console.print(f"JSON batch endpoint again: {n} records …")
            batch_after = await push_batches(base_url, key, records(n, "batch-after", "350111"))
            batch_rps = (batch_before + batch_after) / 2
            peak = peak_rss_mib(deployment.proc.pid)
        finally:
            deployment.stop()

    results = {
        "roster_rows": n,
        "roster_batch_rps": round(batch_rps, 1),
        "roster_batch_rps_before_after": [round(batch_before, 1), round(batch_after, 1)],
        "roster_csv_rows_per_s": round(n / csv_seconds, 1),
        "roster_csv_bytes": len(csv_data),
        "roster_xlsx_rows_per_s": round(n / xlsx_seconds, 1),
        "roster_xlsx_bytes": len(xlsx_data),
        "roster_replay_rows_per_s": round(n / replay_seconds, 1),
        "roster_csv_counts": csv_view["counts"],
        "roster_ledger_peak_rss_mib": round(peak, 1),
    }
    table = Table("measure", "value", "baseline (same run)", "ratio", title=f"Roster benchmark ({n:,} rows)")
    table.add_row("roster CSV, rows/s (upload to last row answered)", f"{n / csv_seconds:,.0f}",
                  f"{batch_rps:,.0f} records/s by the JSON batch (mean of {batch_before:,.0f} before, "
                  f"{batch_after:,.0f} after)", f"{n / csv_seconds / batch_rps:.1%}")
    table.add_row("roster XLSX, rows/s", f"{n / xlsx_seconds:,.0f}", f"{batch_rps:,.0f}",
                  f"{n / xlsx_seconds / batch_rps:.1%}")
    table.add_row("roster CSV again (replays), rows/s", f"{n / replay_seconds:,.0f}", "", "")
    table.add_row("ledger process peak RSS", f"{peak:,.0f} MiB", "", "")
    console.print(table)
    return results


if __name__ == "__main__":
    results = asyncio.run(main())
    results["roster_measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    console.print(f"wrote {record_results(results)}")
