"""acme2certifier (a second ACME server for the bench) on 127.0.0.1, run by bench/.venv-a2c's Python.

    A2C_PORT=N A2C_HTTP_PORT=N A2C_DNS=127.0.0.1:N ACME_SRV_CONFIGFILE=acme_srv.cfg python a2c_launcher.py

Its WSGI app under ``wsgiref`` (shared/TESTBED.md section 8), with two upstream constants
changed for loopback: HTTP-01 validation connects to ``A2C_HTTP_PORT`` instead of 80
(``acme_srv.helpers.network._http_url_host``), and every DNS lookup goes to ``A2C_DNS``
(a challtestsrv, which answers 127.0.0.1 for every name) instead of port 53.
"""

from __future__ import annotations

import os
import sys

import dns.resolver

PORT = int(os.environ["A2C_PORT"])
HTTP_PORT = int(os.environ["A2C_HTTP_PORT"])
DNS_HOST, DNS_PORT = os.environ["A2C_DNS"].rsplit(":", 1)

_init = dns.resolver.Resolver.__init__


def _loopback_resolver(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    _init(self, *args, **kwargs)
    self.nameservers = [DNS_HOST]
    self.port = int(DNS_PORT)


dns.resolver.Resolver.__init__ = _loopback_resolver  # type: ignore[method-assign]

from acme2certifier.acme_srv.helpers import network  # noqa: E402

_url_host = network._http_url_host


def _with_port(host: str) -> str:
    return f"{_url_host(host)}:{HTTP_PORT}"


network._http_url_host = _with_port

from wsgiref.simple_server import WSGIRequestHandler, make_server  # noqa: E402

from acme2certifier.share.acme2certifier_wsgi import application  # noqa: E402


class Quiet(WSGIRequestHandler):
    def log_message(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        pass


def main() -> int:
    server = make_server("127.0.0.1", PORT, application, handler_class=Quiet)
    print(f"acme2certifier on http://127.0.0.1:{PORT}/directory", flush=True)
    server.serve_forever(poll_interval=0.05)  # one request at a time, as the recipe's plain wsgiref
    return 0


if __name__ == "__main__":
    sys.exit(main())
