"""The `xueshi` command: run the system, migrate, manage staff, write the OpenAPI documents.

It lives in the composition package (`xueshi`), which alone knows all three services.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.exc import DBAPIError
from xueshi_shared.database import create_engine, resolve_database_url
from xueshi_shared.settings import Settings, project_dir

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Xueshi: continuing-education hours registry.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema and reference data.")
staff_app = typer.Typer(no_args_is_help=True, help="Staff accounts and their bearer tokens.")
stamps_app = typer.Typer(no_args_is_help=True, help="Stamps (signing keys) of the stamping bodies.")
app.add_typer(db_app, name="db")
app.add_typer(staff_app, name="staff")
app.add_typer(stamps_app, name="stamps")
roster_app = typer.Typer(no_args_is_help=True, help="Rosters: spreadsheets of study records (a training base's key).")
app.add_typer(roster_app, name="roster")

# Human messages go to stderr so that stdout carries only what a script asks for (e.g. a token).
err = Console(stderr=True)


def _settings() -> Settings:
    return Settings()


def _database(settings: Settings) -> tuple[str, object | None]:
    """The database URL, starting or joining the embedded server unless DATABASE_URL is set."""
    return asyncio.run(resolve_database_url(settings))


async def _with_transaction(url: str, fn):
    from sqlalchemy.ext.asyncio import AsyncSession

    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            return await fn(session)
    finally:
        await engine.dispose()


def upgrade_database(url: str) -> None:
    from xueshi_shared.migrations import upgrade_all

    from .services import HISTORIES

    upgrade_all(url, HISTORIES)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every schema's migrations (idempotent)."""
    settings = _settings()
    url, _server = _database(settings)
    upgrade_database(url)
    err.print("[green]database at head[/green]")


@db_app.command("citus")
def db_citus(
    apply: Annotated[bool, typer.Option("--apply", help="Run the statements on the coordinator (one transaction) "
                                        "instead of printing them.")] = False,
    shard_count: Annotated[int | None, typer.Option("--shard-count", min=1, help="Shards of each distributed table "
                                                    "(with --apply; Citus's default is 32).")] = None,
) -> None:
    """Print the SQL that places every table on a Citus cluster, or run it with --apply (checks the schema, and with
    --apply the cluster, first; exit 1 if either is not ready)."""
    from .distribution import DISTRIBUTED_FUNCTIONS, apply_citus, citus_sql

    settings = _settings()
    url, _server = _database(settings)

    async def run() -> str | list[str]:
        engine = create_engine(url, pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as conn:
                if not apply:
                    return await citus_sql(conn)
                return await apply_citus(conn, shard_count)
        finally:
            await engine.dispose()

    try:
        out = asyncio.run(run())
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    except DBAPIError as exc:
        err.print(f"[red]Citus refused the placement, nothing was placed: {exc.orig}[/red]")
        raise typer.Exit(1) from None
    if isinstance(out, str):
        typer.echo(out, nl=False)
    else:
        functions = sum(1 for name in out if name in DISTRIBUTED_FUNCTIONS)
        err.print(f"[green]placed {len(out) - functions} tables and {functions} functions on the cluster[/green]"
                  if out else "[green]every table is placed already[/green]")


@staff_app.command("add")
def staff_add(
    name: Annotated[str, typer.Option(help="The person's name.")],
    role: Annotated[str, typer.Option(help="province_admin, city_admin, authority_reviewer or auditor.")],
    region: Annotated[str | None, typer.Option(help="Region code, for a city_admin.")] = None,
    authority: Annotated[str | None, typer.Option(help="Authority code, for an authority_reviewer.")] = None,
) -> None:
    """Create a staff account; prints its bearer token on stdout and nothing else."""
    from xueshi_shared.iam.api import StaffIn
    from xueshi_shared.iam.models import STAFF_ROLES
    from xueshi_shared.iam.service import create_staff
    from xueshi_shared.problems import Problem

    if role not in STAFF_ROLES:
        err.print(f"[red]no role {role!r}: the roles are {', '.join(STAFF_ROLES)}[/red]")
        raise typer.Exit(2)
    try:
        body = StaffIn(name=name, role=role, region=region, authority=authority)  # type: ignore[arg-type]
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    settings = _settings()
    url, _server = _database(settings)

    async def add(session):
        return await create_staff(session, name=body.name, role=body.role, region=body.region, authority=body.authority)

    try:
        staff_id, token = asyncio.run(_with_transaction(url, add))
    except Problem as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(2) from None
    err.print(f"staff id {staff_id}")
    typer.echo(token)


@staff_app.command("revoke")
def staff_revoke(
    staff_id: Annotated[str, typer.Argument(help="The staff id (see `xueshi staff list`).")],
    reason: Annotated[str, typer.Option(help="Why the account is revoked.")] = "revoked from the command line",
) -> None:
    """Disable a staff account and revoke every token it holds."""
    from xueshi_shared.iam.service import revoke_staff
    from xueshi_shared.problems import Problem

    try:
        sid = uuid.UUID(staff_id)
    except ValueError:
        err.print("[red]not a staff id (a UUID)[/red]")
        raise typer.Exit(2) from None
    settings = _settings()
    url, _server = _database(settings)
    try:
        count = asyncio.run(_with_transaction(url, lambda s: revoke_staff(s, sid, reason)))
    except Problem as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(2) from None
    err.print(f"revoked {count} token(s) of {sid}")


@staff_app.command("list")
def staff_list() -> None:
    """List staff accounts."""
    from rich.table import Table
    from xueshi_shared.iam.service import list_staff

    settings = _settings()
    url, _server = _database(settings)
    rows = asyncio.run(_with_transaction(url, list_staff))
    _print_rows(Table, ("id", "name", "role", "region", "authority", "disabled"),
                [(str(r["id"]), r["name"], r["role"], r["region"] or "", r["authority"] or "",
                  str(r["disabled_at"] or "")) for r in rows])


def _print_rows(table_class, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table on a terminal wide enough for every value; otherwise (a pipe, a narrow terminal) tab-separated
    lines with a header: every id whole, whatever the width."""
    console = Console()
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(header)]
    if console.is_terminal and sum(widths) + 3 * len(header) + 1 <= console.width:
        table = table_class(*header)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    typer.echo("\t".join(header))
    for row in rows:
        typer.echo("\t".join(row))


def _stamp_secret(settings: Settings) -> bytes:
    from verification.app import stamp_secret

    try:
        return stamp_secret(settings)
    except RuntimeError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _with_stamp_body(body: str, action):
    """Run `action(session, secret, name)` for a known stamping body in one transaction; exit 2 otherwise."""
    from verification.keys import body_names

    settings = _settings()
    secret = _stamp_secret(settings)
    url, _server = _database(settings)

    async def run(session):
        names = await body_names(session)
        if body not in names:
            raise KeyError(body)
        return await action(session, secret, names[body])

    try:
        return asyncio.run(_with_transaction(url, run))
    except KeyError:
        err.print(f"[red]unknown stamping body {body!r}[/red]")
        raise typer.Exit(2) from None


@stamps_app.command("create")
def stamps_create(
    body: Annotated[str, typer.Argument(help="350000 (省人社厅), a city code such as 350100, or an authority such as A15; "
                                             "'all' creates every missing stamp.")],
) -> None:
    """Create a stamping body's first stamp (Ed25519 + a CA-certified P-256 PDF key), encrypted at rest."""
    from verification.keys import create_stamp, current_stamp
    from verification.service import ensure_stamps

    if body == "all":
        settings = _settings()
        secret = _stamp_secret(settings)
        url, _server = _database(settings)
        created = asyncio.run(_with_transaction(url, lambda session: ensure_stamps(session, secret)))
    else:
        async def create(session, secret, name):
            if await current_stamp(session, body) is not None:
                return []
            await create_stamp(session, secret, body, name)
            return [body]

        created = _with_stamp_body(body, create)
    err.print(f"created stamps: {', '.join(created) or 'none (they exist; use `xueshi stamps rotate`)'}")


@stamps_app.command("rotate")
def stamps_rotate(body: Annotated[str, typer.Argument(help="The stamping body.")]) -> None:
    """Give a body a new key version; earlier versions stay published so earlier proofs keep verifying."""
    from verification.keys import create_stamp

    version = _with_stamp_body(body, lambda session, secret, name: create_stamp(session, secret, body, name))
    err.print(f"{body}: now signing with key version {version}")


@stamps_app.command("list")
def stamps_list() -> None:
    """List every stamp version."""
    import sqlalchemy as sa
    from rich.table import Table
    from verification.models import Stamp

    settings = _settings()
    url, _server = _database(settings)

    async def rows(session):
        return (await session.execute(sa.select(Stamp.body, Stamp.version, Stamp.name, Stamp.created_at,
                                                Stamp.retired_at).order_by(Stamp.body, Stamp.version))).all()

    _print_rows(Table, ("body", "version", "name", "created", "retired"),
                [(r.body, str(r.version), r.name, str(r.created_at), str(r.retired_at or ""))
                 for r in asyncio.run(_with_transaction(url, rows))])


@app.command("loadgen")
def loadgen(
    url: Annotated[str, typer.Option(help="The hours-ledger's address, e.g. http://127.0.0.1:8002")],
    base: Annotated[list[str], typer.Option(help="KEY=COURSE_ID[,COURSE_ID…] of a training base; repeatable.")],
    records: Annotated[int, typer.Option(help="How many records to push.")] = 1000,
    concurrency: Annotated[int, typer.Option(help="Concurrent clients.")] = 32,
    people: Annotated[int, typer.Option(help="Distinct people the records are about.")] = 3000,
    first_day: Annotated[str, typer.Option(help="First study day (YYYY-MM-DD).")] = "2026-06-01",
    days: Annotated[int, typer.Option(help="Days the study is spread over.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same records).")] = 2026,
) -> None:
    """Push realistic study records to a ledger like several training bases would, with a progress bar."""
    import datetime as dt
    import random

    from hours_ledger.loadgen import BaseKey, make_records, push_records
    from rich.progress import Progress
    from rich.table import Table

    keys = []
    for item in base:
        key, _, courses = item.partition("=")
        if not key or not courses:
            err.print(f"[red]--base takes KEY=COURSE_ID[,COURSE_ID…], not {item!r}[/red]")
            raise typer.Exit(2)
        keys.append(BaseKey(key, tuple(c for c in courses.split(",") if c)))
    tag = f"loadgen-{seed}-{int(time.time())}"
    batch = make_records(keys, records, people, random.Random(seed), tag, dt.date.fromisoformat(first_day), days)
    with Progress(console=err) as progress:
        task = progress.add_task("pushing records", total=len(batch))
        result = asyncio.run(push_records(url.rstrip("/"), batch, concurrency,
                                          lambda n: progress.advance(task, n)))
    table = Table("records", "seconds", "records/s", "p50 ms", "p99 ms", "statuses")
    table.add_row(str(len(batch)), f"{result.seconds:.1f}", f"{result.rate:,.0f}", f"{result.p50 * 1000:.1f}",
                  f"{result.percentile(0.99) * 1000:.1f}",
                  ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items(), key=str)))
    Console().print(table)
    if any(not (isinstance(k, int) and k < 300) for k in result.statuses):
        raise typer.Exit(1)


@roster_app.command("upload")
def roster_upload(
    file: Annotated[Path, typer.Argument(help="The roster: .xlsx, or .csv in UTF-8 or GB18030.", exists=True,
                                         dir_okay=False, readable=True)],
    url: Annotated[str, typer.Option(help="The hours-ledger's address, e.g. http://127.0.0.1:8002")],
    key: Annotated[str, typer.Option(envvar="XUESHI_BASE_KEY", help=(
        "The training base's API key (or the environment variable XUESHI_BASE_KEY, which stays out of the "
        "process list)."))],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Answer every row, write nothing.")] = False,
    result: Annotated[Path | None, typer.Option(help="Save the answered sheet (result.xlsx) here.")] = None,
    show: Annotated[int, typer.Option(help="Refused rows to list.")] = 20,
) -> None:
    """Upload a roster and follow it to the end with a progress bar; list the refused rows.

    Exit status: 0 when no row was refused, 1 when some were, 2 when the file itself was refused."""
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=httpx.Timeout(30, read=600)) as client:
        with file.open("rb") as handle:
            sent = client.post("/v1/rosters", params={"dry_run": "true"} if dry_run else None,
                               files={"file": (file.name, handle)})
        if sent.status_code != 202:
            _problem_exit(sent)
        accepted = sent.json()
        roster_id = accepted["id"]
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err) as progress:
            task = progress.add_task("dry run" if dry_run else "answering rows", total=accepted["rows_total"])
            while True:
                view = client.get(f"/v1/rosters/{roster_id}", params={"limit": 0})
                if view.status_code != 200:
                    _problem_exit(view)
                body = view.json()
                progress.update(task, completed=body["rows_done"])
                if body["status"] != "processing":
                    break
                time.sleep(0.5)
        counts = Table("roster", "status", *body["counts"], title=f"{file.name}{' (dry run)' if dry_run else ''}")
        counts.add_row(roster_id, body["status"], *(str(n) for n in body["counts"].values()))
        Console().print(counts)
        if body["counts"]["refused"] and show:
            refused = client.get(f"/v1/rosters/{roster_id}", params={"status": "refused", "limit": show}).json()
            table = Table("row", "external_id", "rule", "column", "problem")
            for row in refused["rows"]:
                problem = row["problem"] or {}
                table.add_row(str(row["row"]), row["external_id"] or "", problem.get("type", "").rsplit("/", 1)[-1],
                              str(problem.get("column", "")), problem.get("detail", ""))
            Console().print(table)
        if result is not None:
            sheet = client.get(f"/v1/rosters/{roster_id}/result.xlsx")
            if sheet.status_code != 200:
                _problem_exit(sheet)
            result.write_bytes(sheet.content)
            err.print(f"wrote {result}")
    if body["status"] != "done":
        err.print(f"[red]the upload was {body['status']}: upload the file again (what was written replays)[/red]")
        raise typer.Exit(1)
    if body["counts"]["refused"]:
        raise typer.Exit(1)


def _problem_exit(response: object) -> None:
    import httpx

    assert isinstance(response, httpx.Response)
    try:
        problem = response.json()
        where = "".join(f", {k} {problem[k]}" for k in ("row", "column") if k in problem)
        err.print(f"[red]{response.status_code} {problem.get('title', '')}: {problem.get('detail', '')}{where}[/red]")
    except ValueError:
        err.print(f"[red]{response.status_code}: {response.text[:500]}[/red]")
    raise typer.Exit(2)


@app.command("openapi")
def openapi_cmd(
    out: Annotated[Path, typer.Option(help="Directory to write into.")] = Path("openapi"),
) -> None:
    """Write openapi/<service>.json for the three services, generated from the code."""
    from .openapi import render_all

    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out / f"{name}.json").write_text(text, encoding="utf-8")
        err.print(f"wrote {out / f'{name}.json'}")


FOLDER = "statistics-fold"


def _fold_forever(settings: Any) -> None:
    """The statistics fold (hours_ledger/statistics.py) in a process of its own, every statistics_fold_seconds:
    its CPU then never delays the requests of a serving process. One per deployment is enough; more are
    harmless (an advisory lock lets one fold at a time). Intake comes first: it leaves a burst of intake alone
    (statistics_fold_busy_per_second, for at most statistics_fold_most_lag_seconds) and lowers its own CPU priority
    by statistics_fold_nice; the counters catch up as soon as the burst is over (each statistics request folds what
    it can, and its `as_of` says up to when all is in)."""
    import os

    from hours_ledger import statistics
    from xueshi_shared.database import create_engine

    async def main() -> None:
        url = settings.effective_database_url()
        if not url:
            raise SystemExit("the statistics fold needs XUESHI_DATABASE_URL (xueshi run sets it)")
        if settings.statistics_fold_nice:
            os.nice(settings.statistics_fold_nice)
        engine = create_engine(url, pool_size=1, max_overflow=0)
        folder = statistics.Folder(engine, settings.statistics_fold_seconds, settings.statistics_fold_busy_per_second,
                                   settings.statistics_fold_most_lag_seconds)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        folder.start()
        try:
            await stop.wait()
        finally:
            await folder.stop()
            await engine.dispose()

    asyncio.run(main())


@app.command("serve")
def serve(name: Annotated[str, typer.Argument(help=f"catalog, hours-ledger, verification or {FOLDER}")]) -> None:
    """Run one service in the foreground (what `xueshi run` and the deploy process files call). `statistics-fold`
    is the process that folds recorded changes into the HR statistics' counters (it serves no HTTP)."""
    import uvicorn

    from .services import SERVICES

    if name == FOLDER:
        from xueshi_shared.observability import configure_logging

        settings = _settings()
        configure_logging(settings.log_level)
        _fold_forever(settings)
        return
    if name not in SERVICES:
        err.print(f"[red]unknown service {name!r}; one of {', '.join(SERVICES)}[/red]")
        raise typer.Exit(2)
    from xueshi_shared.observability import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    spec = SERVICES[name]
    common = dict(
        host=settings.host,
        port=spec.port(settings),
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        timeout_graceful_shutdown=10,
    )
    # A closed terminal (SIGHUP) stops the service as SIGTERM does (uvicorn's graceful shutdown, then the exit
    # handlers that give back an embedded database's handle), instead of killing it on the spot.
    signal.signal(signal.SIGHUP, lambda signum, frame: os.kill(os.getpid(), signal.SIGTERM))
    if settings.workers > 1:
        # Several processes: uvicorn imports the app factory in each (settings come from the environment).
        uvicorn.run(spec.factory, factory=True, workers=settings.workers, **common)
    else:
        uvicorn.run(spec.create_app(settings), **common)


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def bootstrap_admin(url: str, token_file: Path) -> bool:
    """On the first start (no staff at all), create an administrator and write its token to a file."""
    from xueshi_shared.iam.service import create_staff, staff_exists

    async def ensure(session):
        if await staff_exists(session):
            return None
        return await create_staff(session, name="bootstrap administrator", role="province_admin")

    created = asyncio.run(_with_transaction(url, ensure))
    if created is None:
        return False
    _write_secret(token_file, created[1])
    return True


def _wait_ready(urls: dict[str, str], procs: list[subprocess.Popen], timeout: float = 60.0) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    pending = dict(urls)
    while pending and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        for name, base in list(pending.items()):
            try:
                if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    return not pending


@app.command("run")
def run() -> None:
    """Start the whole system: database (embedded unless DATABASE_URL), migrations, three services and the
    statistics fold."""
    from .services import SERVICES

    settings = _settings()
    err.print("starting the database…" if not settings.effective_database_url() else "using DATABASE_URL")
    url, _server = _database(settings)  # _server keeps an embedded PostgreSQL alive until we exit
    upgrade_database(url)
    from xueshi_shared.pii import ensure_key_file

    if not settings.pii_key and ensure_key_file(settings.data_dir / "pii.key"):
        err.print(f"[bold]created the key protecting ID numbers: {settings.data_dir / 'pii.key'} (mode 600); "
                  "back it up: without it stored ID numbers cannot be read[/bold]")
    from verification.app import stamp_secret
    from verification.service import ensure_stamps

    created = asyncio.run(_with_transaction(url, lambda s: ensure_stamps(s, stamp_secret(settings))))
    if created:
        err.print(f"created the stamps of {len(created)} stamping bodies (see `xueshi stamps list`)")
    token_file = settings.data_dir / "admin-token"
    if bootstrap_admin(url, token_file):
        err.print(f"[bold]bootstrap administrator created; its bearer token is in {token_file} (mode 600)[/bold]")

    env = dict(os.environ, XUESHI_DATABASE_URL=url, XUESHI_PROJECT_DIR=str(project_dir()))
    procs: list[subprocess.Popen] = []
    urls = {}
    for name, spec in SERVICES.items():
        procs.append(subprocess.Popen([sys.executable, "-m", "xueshi.cli", "serve", name], env=env))
        urls[name] = f"http://{settings.host}:{spec.port(settings)}"
    procs.append(subprocess.Popen([sys.executable, "-m", "xueshi.cli", "serve", FOLDER], env=env))

    stopping = False

    def stop(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True

    # Ctrl-C, `kill` and a closed terminal alike stop the services and then the embedded database.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        if _wait_ready(urls, procs):
            for name, base in urls.items():
                err.print(f"[green]{name:<13}[/green] {base}   (docs: {base}/docs)")
            err.print("all services ready; Ctrl-C stops everything")
        elif not stopping:
            err.print("[red]a service did not become ready; stopping[/red]")
            stopping = True
        while not stopping:
            if any(p.poll() is not None for p in procs):
                err.print("[red]a service exited; stopping the others[/red]")
                break
            time.sleep(0.3)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        err.print("stopped")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
