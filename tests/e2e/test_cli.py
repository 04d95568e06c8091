"""The `xueshi` command as an operator uses it: real subprocesses against a real database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from xueshi.services import SERVICES

from tests.support.http import running

XUESHI = [sys.executable, "-m", "xueshi.cli"]


def _env(database_url: str) -> dict[str, str]:
    from tests.conftest import TEST_PII_KEY

    env = {k: v for k, v in os.environ.items() if not k.startswith("XUESHI_")}
    env["DATABASE_URL"] = database_url
    env["XUESHI_PII_KEY"] = TEST_PII_KEY  # the shared test database's stamps are sealed with it
    return env


def xueshi(*args: str, database_url: str, cwd, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*XUESHI, *args], cwd=cwd, env=_env(database_url), capture_output=True, text=True,
                          timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


async def test_staff_add_prints_only_a_working_token_and_revoke_disables_it(database_url, settings, tmp_path, engine):
    added = xueshi("staff", "add", "--name", "王芳", "--role", "auditor", database_url=database_url, cwd=tmp_path)
    lines = added.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("xs_"), added.stdout
    token = lines[0]
    staff_id = added.stderr.split("staff id", 1)[1].split()[0]
    uuid.UUID(staff_id)

    app = SERVICES["hours-ledger"].create_app(settings)
    async with running(app) as client:
        me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["role"] == "auditor"

        xueshi("staff", "revoke", staff_id, "--reason", "left the bureau", database_url=database_url, cwd=tmp_path)
        after = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert after.status_code == 401


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "李四", "--role", "emperor"], "role"),
        (["--name", "李四", "--role", "city_admin"], "region"),
        (["--name", "李四", "--role", "city_admin", "--region", "999999"], "region"),
        (["--name", "李四", "--role", "authority_reviewer"], "authority"),
    ],
)
def test_staff_add_refuses_bad_input_with_a_message_and_no_token(args, message, database_url, tmp_path, engine):
    proc = xueshi("staff", "add", *args, database_url=database_url, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert message in proc.stderr.lower()


def test_an_unknown_role_is_told_the_roles_that_exist(database_url, tmp_path, engine):
    proc = xueshi("staff", "add", "--name", "李四", "--role", "boss", database_url=database_url, cwd=tmp_path,
                  check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert all(role in proc.stderr for role in ("province_admin", "city_admin", "authority_reviewer", "auditor"))


def test_lists_print_whole_ids_at_any_width(database_url, tmp_path, engine):
    token = xueshi("staff", "add", "--name", "李四", "--role", "auditor", database_url=database_url,
                   cwd=tmp_path)
    staff_id = token.stderr.split("staff id ", 1)[1].split()[0]
    for columns in ("40", "200"):
        listed = subprocess.run([*XUESHI, "staff", "list"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=120, env={**_env(database_url), "COLUMNS": columns})
        assert staff_id in listed.stdout, listed.stdout


def test_staff_revoke_of_an_unknown_id_fails_cleanly(database_url, tmp_path, engine):
    proc = xueshi("staff", "revoke", str(uuid.uuid4()), database_url=database_url, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_db_upgrade_is_idempotent(database_url, tmp_path, engine):
    xueshi("db", "upgrade", database_url=database_url, cwd=tmp_path)
    xueshi("db", "upgrade", database_url=database_url, cwd=tmp_path)


def test_openapi_writes_the_three_documents(tmp_path):
    proc = subprocess.run([*XUESHI, "openapi", "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.json", "hours-ledger.json", "verification.json"]


def test_stamps_are_created_once_rotated_and_listed(database_url, tmp_path, engine):
    xueshi("stamps", "create", "all", database_url=database_url, cwd=tmp_path)
    again = xueshi("stamps", "create", "A15", database_url=database_url, cwd=tmp_path)
    assert "none" in again.stderr  # it exists already
    rotated = xueshi("stamps", "rotate", "A15", database_url=database_url, cwd=tmp_path)
    assert "now signing with key version" in rotated.stderr
    listed = xueshi("stamps", "list", database_url=database_url, cwd=tmp_path)
    assert "A15" in listed.stdout
    unknown = xueshi("stamps", "rotate", "A99", database_url=database_url, cwd=tmp_path, check=False)
    assert unknown.returncode == 2 and "unknown stamping body" in unknown.stderr


def test_db_citus_prints_the_placement_of_every_table(database_url, tmp_path, engine):
    from xueshi.distribution import DISTRIBUTED_FUNCTIONS, PLACEMENTS

    out = xueshi("db", "citus", database_url=database_url, cwd=tmp_path).stdout
    lines = out.splitlines()
    assert lines[0].startswith("--") and lines[-1] == "COMMIT;"
    # One transaction, the trigger of entries allowed on its shards in it alone (deploy/scale-out.md).
    assert lines[lines.index("BEGIN;") + 1] == "SET LOCAL citus.enable_unsafe_triggers = on;"
    assert len([line for line in lines if line.startswith("SELECT ")]) == len(PLACEMENTS) + len(DISTRIBUTED_FUNCTIONS)
    assert ("SELECT create_distributed_function('hours_ledger.write_people'::regproc, 'p', colocate_with => "
            "'hours_ledger.people');") in out
    assert "SELECT create_distributed_table('hours_ledger.records', 'person_id', colocate_with => " in out
