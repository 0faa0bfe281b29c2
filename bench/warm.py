#!/usr/bin/env python3
"""A warm, in-process issuance, as a ``renew --loop`` process makes it: one interpreter that has
issued once already (imports done, account known) issues again and again through the library's
whole pipeline (``sesam_tls.issue``: ACME exchange, checks, files, state; no container).

    .venv/bin/python bench/warm.py --server URL --ca-bundle PEM --http-port N --root DIR [--runs 10] [--names 1]

Prints one JSON object: per run the wall time, the time spent inside HTTP requests to the CA
(``requests.Session.send``, wrapped) and in the waits between polls (``poll``'s sleeps,
wrapped): together "the CA's own time", which on loopback is the CA's work plus a few
hundred microseconds of wire per request. The rest is this process's own time. With
``--names N`` each certificate has N names; their authorizations run in worker threads, so
the CA's time summed over threads can exceed the wall time: ``cpu`` (this process's CPU
time, every thread) then says what the run itself costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--ca-bundle", default=None)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--names", type=int, default=1, help="names on each certificate")
    args = ap.parse_args(argv)

    import requests

    import sesam_tls.providers.acme as acme_mod
    from sesam_tls import CertRequest, DeployOptions, Node, issue
    from sesam_tls.deadline import poll as real_poll
    from sesam_tls.http01 import Http01Options
    from sesam_tls.providers.acme import Acme

    waited = [0.0]
    request = requests.Session.send

    def timed_request(self, *a, **kw):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return request(self, *a, **kw)
        finally:
            waited[0] += time.perf_counter() - t

    def timed_poll(*a, **kw):  # type: ignore[no-untyped-def]
        def sleep(s: float) -> None:
            waited[0] += s
            time.sleep(s)

        return real_poll(*a, sleep=sleep, **kw)

    requests.Session.send = timed_request
    acme_mod.poll = timed_poll

    node = Node.from_settings(root=args.root, env={})
    http01 = Http01Options(strategy="standalone", port=args.http_port, listen=("127.0.0.1",))

    def once(i: int) -> tuple[float, float, float]:
        waited[0] = 0.0
        provider = Acme(state_dir=node.state_dir, directory=args.server, ca_bundle=args.ca_bundle,
                        agree_tos=True, email="a@example.test", http01=http01)
        stamp = time.time_ns()
        names = [f"warm{i}-{n}-{stamp}.example.test" for n in range(args.names)]
        t, cpu = time.perf_counter(), time.process_time()
        issue(CertRequest.build(names), provider, node=node, options=DeployOptions(restart=False), replace=True)
        return time.perf_counter() - t, waited[0], time.process_time() - cpu

    once(-1)  # the first: imports of what issue loads lazily, the account
    runs = [once(i) for i in range(args.runs)]
    walls, cas = [w for w, _, _ in runs], [c for _, c, _ in runs]
    print(json.dumps({
        "wall": walls, "ca": cas, "own": [w - c for w, c, _ in runs], "cpu": [c for _, _, c in runs],
        "median_wall": statistics.median(walls), "median_ca": statistics.median(cas),
        "median_own": statistics.median([w - c for w, c, _ in runs]),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
