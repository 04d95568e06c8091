"""The shipped nginx configuration (deploy/nginx.conf), run by Debian's nginx in front of the services: it parses,
masks ID numbers in its access log, sends each route to its service, and limits public routes per client."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
from catalog.app import create_app as create_catalog
from hours_ledger.app import create_app as create_ledger
from verification.app import create_app as create_verification

from tests.support.factories import make_staff, ric
from tests.support.servers import free_port, serving
from tests.support.tools import debian_tool

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path, ports: dict[str, int], listen: int) -> str:
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    for name, port in ports.items():
        site = re.sub(rf"server {name}:[0-9]+", f"server 127.0.0.1:{port}", site)
    site = site.replace("listen 80 default_server;", f"listen 127.0.0.1:{listen} default_server;")
    site = site.replace("/var/log/nginx/access.log", str(tmp_path / "access.log"))
    (tmp_path / "site.conf").write_text(site)
    main = f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi; uwsgi_temp_path {tmp_path}/uwsgi; scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/site.conf;
}}"""
    path = tmp_path / "nginx.conf"
    path.write_text(main)
    return str(path)


async def test_the_proxy_routes_masks_and_limits(settings, engine, tmp_path):
    nginx = debian_tool("nginx", "nginx-light")
    admin = await make_staff(engine, "province_admin")
    async with serving(create_catalog(settings)) as catalog, serving(create_ledger(settings)) as ledger, \
            serving(create_verification(settings)) as verification:
        ports = {name: int(url.rsplit(":", 1)[1]) for name, url in
                 (("catalog", catalog), ("hours-ledger", ledger), ("verification", verification))}
        listen = free_port()
        config = _config(tmp_path, ports, listen)
        check = subprocess.run([nginx, "-t", "-c", config], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen([nginx, "-c", config, "-g", "daemon off;"], stderr=subprocess.PIPE)
        try:
            base = f"http://127.0.0.1:{listen}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                for _ in range(50):
                    try:
                        await client.get("/healthz")
                        break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                number = ric(950)
                old = await client.get(f"/v1/people/{number}/transcript?year=2026", headers=admin.headers)
                assert old.status_code == 404 and old.headers["Deprecation"] == "true"  # reached the ledger
                attendance = await client.post("/v1/seminars/00000000-0000-0000-0000-000000000000/attendance",
                                               json={"trainees": [{}]})
                assert attendance.status_code == 401  # the ledger's route, not the catalog's 404
                assert (await client.get("/v1/region-codes")).status_code == 200
                codes = [(await client.get("/v1/trust/ca.pem")).status_code for _ in range(40)]
                assert 429 in codes and codes[0] == 200
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    lines = [json.loads(line) for line in (tmp_path / "access.log").read_text().splitlines()]
    transcript = next(line for line in lines if "/transcript" in line["uri"])
    assert number not in transcript["uri"] and "******************" in transcript["uri"]

