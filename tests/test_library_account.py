"""Revocation and the ACME account through the library alone (issue 13: one way in).

Each test runs its operation in a fresh interpreter that imports ``sesam_tls``
and nothing of the CLI, against this session's Pebble, and ends by checking
that ``sesam_tls.cli`` was never loaded. The node gets its ACME certificate
through the library too (``sesam_tls.issue`` with ``sesam_tls.Acme``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import requests

from .acme_fixtures import NAME, node_factory  # noqa: F401 - a fixture

pytestmark = pytest.mark.integration

#: The node, and ``issue(email)``: an ACME certificate for NAME from Pebble onto it (no nginx), through the library.
PREAMBLE = """
import json, sys
from pathlib import Path
import sesam_tls

NAME, DIRECTORY, CA_BUNDLE = {name!r}, {directory!r}, {ca_bundle!r}
node = sesam_tls.Node.from_settings(root={root!r}, env={{}})

def issue(email=None):
    acme = sesam_tls.Acme(
        state_dir=node.state_dir, directory=DIRECTORY, ca_bundle=CA_BUNDLE, agree_tos=True, email=email,
        http01=sesam_tls.Http01Options(strategy="standalone", port={http_port}, listen=("127.0.0.1",)),
    )
    outcome = sesam_tls.issue(sesam_tls.CertRequest.build([NAME]), acme, node=node,
                              options=sesam_tls.DeployOptions(restart=False))
    return outcome.bundle

def refused(call, kind):
    try:
        call()
    except kind as exc:
        return str(exc)
    raise AssertionError("not refused: " + repr(call))
"""

EPILOGUE = """
assert "sesam_tls.cli" not in sys.modules, sorted(m for m in sys.modules if m.startswith("sesam_tls.cli"))
print(json.dumps(out))
"""


def run_library(pebble, node, script: str) -> dict:
    """``script`` after PREAMBLE in a fresh interpreter; it fills ``out``, printed as JSON on the last line."""
    code = PREAMBLE.format(root=str(node.root), directory=pebble.directory, ca_bundle=pebble.ca_bundle,
                           http_port=pebble.http_port, name=NAME)
    code += textwrap.dedent(script) + EPILOGUE
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def cert_status(pebble, serial: str) -> str:
    r = requests.get(f"{pebble.mgmt_url}/cert-status-by-serial/{serial}", verify=pebble.ca_bundle, timeout=5)
    r.raise_for_status()
    return r.json()["Status"]


def test_revoke_through_the_library(pebble, node_factory):
    t = node_factory()
    out = run_library(pebble, t.node, """
        import datetime as dt
        from sesam_tls.errors import IssuanceError, UsageError

        out = {"unknown": refused(lambda: sesam_tls.revoke(node, reason="because"), UsageError)}
        out["before_issue"] = refused(lambda: sesam_tls.revoke(node), UsageError)
        first = issue()
        done = sesam_tls.revoke(node, reason="superseded")  # the CA is the record's: nothing more to say
        assert isinstance(done, sesam_tls.Revocation)
        assert done.serial == first.serial and done.reason == "superseded" and done.names == (NAME,)
        assert isinstance(done.revoked_at, dt.datetime) and done.revoked_at.tzinfo is not None
        assert done.to_json() == {"result": "revoked", "serial": first.serial, "reason": "superseded",
                                  "names": [NAME]}
        out["first"] = first.serial
        out["again"] = refused(lambda: sesam_tls.revoke(node), IssuanceError)  # the CA: already revoked

        second = issue()
        done = sesam_tls.revoke(node, reason="keycompromise")  # certbot's spelling; signed with the cert's key
        assert done.reason == "keyCompromise" and done.serial == second.serial
        out["second"] = second.serial
    """)
    assert "`reason`" in out["unknown"] and "keyCompromise" in out["unknown"]
    assert "was not issued by an ACME CA" in out["before_issue"]
    assert "the CA refused" in out["again"]
    assert cert_status(pebble, out["first"]) == "Revoked"
    assert cert_status(pebble, out["second"]) == "Revoked"
    record = json.loads(t.node.metadata_path.read_text())
    assert record["revoked"]["serial"] == out["second"] and record["revoked"]["reason"] == "keyCompromise"


def test_account_info_through_the_library(pebble, node_factory):
    t = node_factory()
    out = run_library(pebble, t.node, """
        issue(email="ops@example.test")
        info = sesam_tls.Account(node).info()  # the CA and its CA bundle come from the record
        assert isinstance(info, sesam_tls.AccountInfo)
        assert info.key_file.is_file() and info.created_at and info.rolled_over_at is None
        out = {"info": info.to_json(), "contact": list(info.contact)}
        out["elsewhere"] = refused(
            lambda: sesam_tls.Account(node, directory="https://127.0.0.1:1/dir").info(), sesam_tls.SesamTLSError)
    """)
    info = out["info"]
    assert list(info) == ["directory", "uri", "status", "contact", "created_at", "key_type", "key_thumbprint",
                          "key_file", "rolled_over_at"]  # what `account show --json` printed
    assert info["directory"] == pebble.directory and info["status"] == "valid"
    assert out["contact"] == ["mailto:ops@example.test"] and info["key_type"] == "ecdsa-p256"
    assert info["uri"].startswith(pebble.directory.rsplit("/", 1)[0])
    assert "no ACME account for https://127.0.0.1:1/dir" in out["elsewhere"]


def test_account_rollover_through_the_library(pebble, node_factory):
    t = node_factory()
    out = run_library(pebble, t.node, """
        issue()
        account = sesam_tls.Account(node, directory=DIRECTORY, ca_bundle=CA_BUNDLE)
        before = account.info()
        old_key = before.key_file.read_bytes()
        rolled = account.rollover()
        assert isinstance(rolled, sesam_tls.KeyRollover)
        assert rolled.directory == DIRECTORY and rolled.key_thumbprint != before.key_thumbprint
        assert rolled.to_json() == {"result": "rolled over", "directory": DIRECTORY,
                                    "key_thumbprint": rolled.key_thumbprint}
        after = account.info()  # signed with the new key: the CA knows the account by it
        assert after.uri == before.uri and after.status == "valid"
        assert after.key_thumbprint == rolled.key_thumbprint and after.rolled_over_at
        assert after.key_file.read_bytes() != old_key
        assert oct(after.key_file.stat().st_mode & 0o777) == "0o600"
        assert not (after.key_file.parent / "key.next.pem").exists()
        # the CA no longer takes the old key: the account reached with it is unknown to the CA
        after.key_file.write_bytes(old_key)
        out = {"old_key": account.info().status}
    """)
    assert out["old_key"].startswith("not usable:"), out


def test_account_deactivate_through_the_library(pebble, node_factory):
    t = node_factory()
    out = run_library(pebble, t.node, """
        import shutil
        from sesam_tls.errors import UsageError

        issue()
        account = sesam_tls.Account(node)
        before = account.info()
        folder = before.key_file.parent
        out = {"unconfirmed": refused(lambda: account.deactivate(confirm=False), UsageError)}
        assert folder.is_dir()  # nothing happened
        done = account.deactivate(confirm=True)
        assert isinstance(done, sesam_tls.Deactivation)
        assert done.directory == before.directory and done.moved_to.is_dir() and not folder.exists()
        assert done.moved_to.name.startswith(folder.name + ".deactivated-")
        assert done.to_json() == {"result": "deactivated", "directory": before.directory,
                                  "moved_to": str(done.moved_to)}
        out["second_info"] = refused(account.info, UsageError)  # no account stored any more
        # the CA has it deactivated: with the old folder put back, the CA refuses the account
        shutil.copytree(done.moved_to, folder)
        out["at_the_ca"] = account.info().status
    """)
    assert "`confirm`" in out["unconfirmed"] and "cannot be undone" in out["unconfirmed"]
    assert "no ACME account for" in out["second_info"]
    assert "deactivated" in out["at_the_ca"], out  # Pebble: "... exists but is deactivated"
