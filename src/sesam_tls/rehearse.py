"""Rehearsals (``renew --dry-run``, ``issue --dry-run``): the whole issuance as if it were due, nothing deployed.

What a rehearsal does, and what it never does:

- the provider runs for real: at Let's Encrypt against its staging
  directory, to the end (new key, order, HTTP-01 with the recorded
  strategy, a certificate, which passes the same gate as a real one); at a
  CA without a staging directory (EAB, private CAs, Pebble) against the
  recorded CA but only until every authorization is valid: the order is
  never finalized, so no certificate is issued, logged or paid for;
  self-signed certificates are simply made;
- the new pair (or, when no certificate was issued, a stand-in certificate
  over the new key) is tested with ``nginx -t`` inside the container, on a
  copy written to a temporary folder inside the ssl folder with a config
  of its own that loads only that copy: the live pair, the live config and
  the running nginx are never touched;
- the live nginx is never stopped, reloaded or restarted: with the
  ``stop-nginx`` strategy (or ``auto`` when the container holds the port)
  the rehearsal ends before answering the challenge and says what the real
  run would do;
- nothing is deployed and nothing is recorded (the record, the agent
  config and the ssl folder stay byte for byte); only an ACME account may
  be created, as a real run would.

The caller holds the node lock: the temporary copy lives in the ssl folder,
which a deployment sweeps.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import shutil
from dataclasses import dataclass
from typing import Any, Optional

from .bundle import Bundle
from .errors import DeployError, DockerError, StorageError
from .fsutil import TMP_MARK, describe_oserror, write_new
from .node import CERT_NAME, KEY_NAME, Node
from .options import DeployOptions
from .providers.base import CertRequest

__all__ = ["Rehearsal", "rehearse"]

log = logging.getLogger("sesam_tls")

CONF_NAME = "nginx-rehearsal.conf"


@dataclass(frozen=True)
class Rehearsal:
    """``message``: what was rehearsed, for the one line the CLI prints. ``bundle``: the certificate
    the rehearsal got (staging, self-signed), None when the CA issued none."""

    message: str
    bundle: Optional[Bundle]

    def to_json(self) -> dict[str, Any]:
        """What ``issue --dry-run --json`` prints."""
        return {"result": "dry-run", "message": self.message, "exit_code": 0}


def rehearse(
    node: Node, request: CertRequest, provider: Any, options: DeployOptions, *, now: Optional[dt.datetime] = None,
    nginx: Any = None,
) -> Rehearsal:
    """``nginx``: the run's :class:`~sesam_tls.nginx.NginxContainer` (its plan's), made here when not given."""
    from .api import gate_bundle
    from .providers.acme_net import LETSENCRYPT_STAGING

    parts: list[str] = []
    bundle: Optional[Bundle] = None
    if hasattr(provider, "rehearse"):
        got = provider.rehearse(request, finalize=getattr(provider, "directory", None) == LETSENCRYPT_STAGING)
    else:
        got = provider.issue(request)
    if isinstance(got, Bundle):
        bundle = gate_bundle(provider, request, got, now=now)
        origin = getattr(provider, "origin", provider.name)
        parts.append(f"got certificate serial {bundle.serial} from {origin}, expiring {bundle.not_after.isoformat()} "
                     "(not deployed)")
        pair, what = bundle, "the new pair"
    else:
        parts.append(got.note)
        pair, what = _stand_in(got.key, request), "the new key (with a stand-in certificate)"
    if options.restart:
        nginx_test_copy(node, pair, options, nginx=nginx)
        parts.append(f"nginx -t accepted {what} in container {node.container} (on a copy; the live pair untouched)")
    else:
        parts.append("nginx -t skipped (--no-restart)")
    parts.append("nothing was deployed or recorded")
    return Rehearsal("; ".join(parts), bundle)


def nginx_test_copy(node: Node, bundle: Bundle, options: DeployOptions, *, nginx: Any = None) -> None:
    """``nginx -t`` in the container on a copy of ``bundle`` in ``ssl/<temp>/``, removed afterwards."""
    if nginx is None:
        from .nginx import NginxContainer

        nginx = NginxContainer(node.container, node.docker_host, timeout=options.timeout)

    name = f"{TMP_MARK}rehearsal-{secrets.token_hex(4)}"  # swept by the next run if this one is killed
    host = node.ssl_dir / name
    inside = node.container_ssl_dir / name
    conf = (
        "# sesam-tls rehearsal: loads only a copy of the new pair; never serves\n"
        "events {}\n"
        "http {\n"
        "    server {\n"
        "        listen 127.0.0.1:9 ssl;\n"
        f"        ssl_certificate     {inside / CERT_NAME};\n"
        f"        ssl_certificate_key {inside / KEY_NAME};\n"
        "    }\n"
        "}\n"
    )
    try:
        os.mkdir(host, 0o755)
        os.chmod(host, 0o755)
        write_new(host / CERT_NAME, bundle.fullchain_pem(), 0o644)
        write_new(host / KEY_NAME, bundle.key_pem(), 0o600)
        write_new(host / CONF_NAME, conf.encode(), 0o644)
    except OSError as exc:
        shutil.rmtree(host, ignore_errors=True)
        raise StorageError(f"cannot write the rehearsal's copy into {node.ssl_dir}: {describe_oserror(exc)}") from None
    try:
        nginx.test_pair(str(inside / CONF_NAME))
    except DockerError as exc:
        if "refused the new pair" in str(exc):
            raise DeployError(f"{exc}; nothing was deployed") from None
        raise
    finally:
        shutil.rmtree(host, ignore_errors=True)
    log.info("nginx -t in container %s accepted a copy of the new pair", node.container)


def _stand_in(key: Any, request: CertRequest) -> Bundle:
    """A one-day self-signed certificate over the rehearsal's new key, for ``nginx -t`` when the
    CA (rightly, in a rehearsal) issued none: nginx is asked about the key and the names."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    first = (request.names or tuple(str(ip) for ip in request.ips))[0]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first[:64])])
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in request.names]
    sans += [x509.IPAddress(ip) for ip in request.ips]
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Bundle(key=key, leaf=cert)
