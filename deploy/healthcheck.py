"""Container health probe for a xueshi service: exit 0 if it answers 200 on PATH, 1 otherwise.

    python /opt/xueshi-deploy/healthcheck.py [/healthz|/readyz]

Only the standard library is used. One container runs one service, chosen by its command, so the
probe does not need to be told which: it asks each service port on the loopback address in turn and
judges by the first one that answers at all (the others refuse the connection at once).
Ports come from the same variables the services read (XUESHI_CATALOG_PORT, ...).
"""

import os
import sys
import urllib.error
import urllib.request

PORTS = (
    ("XUESHI_CATALOG_PORT", "8001"),
    ("XUESHI_LEDGER_PORT", "8002"),
    ("XUESHI_VERIFICATION_PORT", "8003"),
)


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    for var, default in PORTS:
        url = f"http://127.0.0.1:{os.environ.get(var, default)}{path}"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (fixed http URL)
                return 0 if response.status == 200 else 1
        except urllib.error.HTTPError as exc:  # the service answered, but not 200 (e.g. 503 from /readyz)
            print(f"{url}: {exc.code}", file=sys.stderr)
            return 1
        except (urllib.error.URLError, OSError):
            continue  # nothing listening on this port: another service's container
    print("no xueshi service answered on 127.0.0.1", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
