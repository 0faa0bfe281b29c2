#!/usr/bin/env python3
"""Count what one issuance costs on the wire: HTTP requests by method, nonce HEADs and TCP/TLS
connections, for 1, 10 and 100 names (new key, existing account), in process.

    .venv/bin/python bench/wire.py [--sizes 1,10,100] [--json]

Counted from outside the library, so the same script measures any version of it:
``requests.Session.send`` is wrapped to count requests by method (a HEAD is a nonce
fetch: nothing else in the exchange sends one), and
``urllib3.connection.HTTPConnection._new_conn`` (the socket of every HTTP and HTTPS connect) to count connections (each one a TLS
handshake with the CA; the self-check's plain-HTTP fetches of the local responder do not
go through ``requests`` or urllib3). A Pebble of its own on free ports, stopped at the end
(PEBBLE_VA_NOSLEEP=1, PEBBLE_AUTHZREUSE=0, PEBBLE_WFE_NONCEREJECT=0, as the bench).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import testbed as tb  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,10,100")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import requests
    import urllib3.connection

    from sesam_tls.http01 import Http01Options
    from sesam_tls.providers.acme import Acme
    from sesam_tls.providers.base import CertRequest

    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    request, connect = requests.Session.send, urllib3.connection.HTTPConnection._new_conn

    def counted_request(self, prepared, *a, **kw):  # type: ignore[no-untyped-def]
        with lock:
            counts[prepared.method.upper()] += 1
        return request(self, prepared, *a, **kw)

    def counted_connect(self):  # type: ignore[no-untyped-def]
        with lock:
            counts["connections"] += 1
        return connect(self)

    requests.Session.send = counted_request
    urllib3.connection.HTTPConnection._new_conn = counted_connect

    pebble = tb.start_pebble(f"wire-{os.getpid()}", knobs={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0",
                                                          "PEBBLE_WFE_NONCEREJECT": "0"})
    rows = []
    try:
        with tempfile.TemporaryDirectory() as state:
            def acme() -> Acme:
                return Acme(state_dir=Path(state), directory=pebble.directory, ca_bundle=pebble.ca_bundle,
                            agree_tos=True, http01=Http01Options(strategy="standalone", port=pebble.http_port,
                                                                 listen=("127.0.0.1",)))

            counts.clear()
            acme().issue(CertRequest.build(["account.example.test"]))
            rows.append(("1, new account", dict(counts), None))
            for size in [int(s) for s in args.sizes.split(",")]:
                counts.clear()
                started = time.perf_counter()
                acme().issue(CertRequest.build([f"w{size}-{i}.example.test" for i in range(size)]))
                rows.append((str(size), dict(counts), time.perf_counter() - started))
    finally:
        tb.stop_pebble(pebble.name)
    if args.json:
        print(json.dumps([{"names": n, **c, "seconds": s} for n, c, s in rows]))
        return 0
    print("| names | requests | POST | GET | nonce HEADs | connections (TLS handshakes) | in-process s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for names, c, secs in rows:
        total = sum(v for k, v in c.items() if k != "connections")
        print(f"| {names} | {total} | {c.get('POST', 0)} | {c.get('GET', 0)} | {c.get('HEAD', 0)} | "
              f"{c.get('connections', 0)} | {'' if secs is None else f'{secs:.2f}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
