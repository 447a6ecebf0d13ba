"""The image's HEALTHCHECK: `GET /health` from gunicorn in this container; exit 0 only on 200.

Django answers 400 to a Host header outside ALLOWED_HOSTS, and in production that list holds
the service's public names, not `localhost`. So the check asks with the first name the list
allows, and passes whatever names the deployment uses.
"""

from __future__ import annotations

import http.client
import os
import sys

TIMEOUT_SECONDS = 5


def host_header(allowed_hosts: str) -> str:
    """A Host value Django accepts, from ALLOWED_HOSTS as the environment gives it."""
    for entry in (part.strip() for part in allowed_hosts.split(",")):
        if entry and entry != "*":
            # ".example.com" allows example.com and its subdomains.
            return entry.lstrip(".")
    return "localhost"


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    host = host_header(os.environ.get("ALLOWED_HOSTS", "localhost"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("GET", "/health", headers={"Host": host})
        response = connection.getresponse()
        body = response.read(500).decode("utf-8", "replace")
    except OSError as exc:
        sys.stderr.write(f"healthcheck: no answer on port {port}: {exc}\n")
        return 1
    finally:
        connection.close()
    if response.status != 200:
        sys.stderr.write(f"healthcheck: /health answered {response.status}: {body}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
