"""``renew`` with nothing due stays cheap (issue 16): no timing here, the modules it loads.

The timer runs ``sesam-tls renew`` twice a day on every node, and nearly every
run finds nothing due. That decision needs the record (JSON) and the clock
only, so the run must not load cryptography, the ACME and HTTP stacks, the
Docker client, ssl, email or the deployment modules: those are what made it
slow (bench/results/REPORT.md, section 8). Each case runs in a fresh
interpreter and reads ``sys.modules`` at the end, so a new top-level import
on that path fails here instead of in the next benchmark.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import make_root

#: Packages and modules a renewal with nothing due must not load (each with its submodules).
HEAVY = (
    "cryptography", "acme", "josepy", "requests", "urllib3", "docker", "OpenSSL", "ssl", "email",
    "sesam_tls.api", "sesam_tls.deploy", "sesam_tls.store", "sesam_tls.agent_config", "sesam_tls.nginx",
    "sesam_tls.bundle", "sesam_tls.providers.base", "sesam_tls.providers.acme", "sesam_tls.providers.selfsigned",
    "sesam_tls.cli.issue",
)


def heavy_in(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def clean_env() -> dict[str, str]:
    """The environment without this machine's node settings (the timer's run has only --root)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SESAM_TLS_")}


def run_fresh(script: str) -> dict:
    """Run ``script`` in a fresh interpreter; the JSON object it prints last."""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=clean_env())
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[-1])


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()


@pytest.fixture(scope="module")
def issued(tmp_path_factory) -> Path:
    """A node with a self-signed certificate for a.example, a year from expiry (files only, no nginx)."""
    root = make_root(tmp_path_factory.mktemp("budget"))
    p = subprocess.run([sys.executable, "-m", "sesam_tls", "issue", "--self-signed", "-d", "a.example", "--no-restart",
                        "--root", str(root)], capture_output=True, text=True, timeout=120, env=clean_env())
    assert p.returncode == 0, p.stderr
    return root


def _as(issued: Path, tmp_path: Path, provider: str) -> Path:
    """A copy of the issued node whose record says ``provider`` made the certificate (nothing due either way)."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(issued, root, symlinks=True)
    path = root / "var/lib/sesam-tls/certificate.json"
    record = json.loads(path.read_text())
    now = dt.datetime.now(dt.timezone.utc)
    record["provider"] = provider
    if provider == "acme":
        # an ACME certificate whose CA window (ARI) is months away and was asked for a moment ago,
        # deployed with a verify address and a metrics file to replay
        record["provider_settings"] = {"directory": "https://acme.invalid/directory", "http01": "standalone"}
        record["certificate"]["ari_cert_id"] = "aGVsbG8.AQ"
        record["renewal"]["ari"] = {
            "supported": True,
            "start": _iso(now + dt.timedelta(days=250)),
            "end": _iso(now + dt.timedelta(days=260)),
            "chosen": _iso(now + dt.timedelta(days=255)),
            "next_poll": _iso(now + dt.timedelta(hours=6)),
        }
        record["settings"]["verify"] = "127.0.0.1:8443"
        record["settings"]["metrics_file"] = str(tmp_path / "sesam_tls.prom")
    else:
        record["provider_settings"] = {"cert_file": "/nonexistent/cert.pem"}
    path.write_text(json.dumps(record, indent=2))
    return root


def cli_renew(root: Path) -> dict:
    """``sesam-tls renew --root ROOT`` as the timer runs it, in a fresh interpreter: exit code, output, modules."""
    return run_fresh(
        "import io, json, sys, contextlib\n"
        f"sys.argv = ['sesam-tls', 'renew', '--root', {str(root)!r}]\n"
        "from sesam_tls.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    code = main()\n"
        "print(json.dumps({'code': code, 'out': out.getvalue(), 'modules': sorted(sys.modules)}))\n"
    )


def test_renew_with_nothing_due_loads_no_crypto_network_or_deployment(issued):
    got = cli_renew(issued)
    assert got["code"] == 0
    assert got["out"].startswith("not due: ")
    assert heavy_in(got["modules"]) == []


@pytest.mark.parametrize("provider", ["acme", "import"])
def test_nor_for_an_acme_or_an_imported_certificate(issued, tmp_path, provider):
    root = _as(issued, tmp_path, provider)
    got = cli_renew(root)
    assert got["code"] == 0, got["out"]
    assert got["out"].startswith("not due: ")
    assert ("the CA suggests renewing" in got["out"]) == (provider == "acme")
    assert heavy_in(got["modules"]) == []
    if provider == "acme":
        assert (tmp_path / "sesam_tls.prom").exists()  # the replayed metrics file is written on a not-due run too


def test_nor_through_the_library_alone(issued):
    got = run_fresh(
        "import json, sys\n"
        "import sesam_tls\n"
        f"result = sesam_tls.renew(sesam_tls.Node.from_settings(root={str(issued)!r}))\n"
        "assert 'sesam_tls.cli' not in sys.modules\n"
        "print(json.dumps({'status': result.status, 'modules': sorted(sys.modules)}))\n"
    )
    assert got["status"] == "not-due"
    assert heavy_in(got["modules"]) == []


def test_a_renewal_that_is_due_still_loads_what_it_needs(issued, tmp_path):
    """The check above is not vacuous: a forced renewal loads the provider and the deployment."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(issued, root, symlinks=True)
    got = run_fresh(
        "import io, json, sys, contextlib\n"
        f"sys.argv = ['sesam-tls', 'renew', '--force', '--no-restart', '--root', {str(root)!r}]\n"
        "from sesam_tls.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    code = main()\n"
        "print(json.dumps({'code': code, 'out': out.getvalue(), 'modules': sorted(sys.modules)}))\n"
    )
    assert got["code"] == 0, got["out"]
    assert got["out"].startswith("renewed a.example")
    assert {"cryptography", "sesam_tls.deploy", "sesam_tls.providers.selfsigned"} <= set(got["modules"])


def test_the_issue_path_loads_no_status_rollback_or_port_inspection():
    """``issue`` loads what issuing needs: not the status report, the rollback machinery or the
    port-holder inspection (each only where it is used: a bench measure, issue 16)."""
    loaded = run_fresh(
        "import json, sys\n"
        "import sesam_tls.cli.issue, sesam_tls.issuing, sesam_tls.api, sesam_tls.providers.acme, sesam_tls.http01\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert not {"sesam_tls.status", "sesam_tls.rollback", "sesam_tls.ports"} & set(loaded)
