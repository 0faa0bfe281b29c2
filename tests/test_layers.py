"""Issue 13's two layer rules, as behaviour (``.importlinter`` checks the imports): the node record
is read without the providers, and a rebuilt provider is handed its nginx container by its caller."""

from __future__ import annotations

import subprocess
import sys

from sesam_tls import Node
from sesam_tls.nginx import NginxContainer
from sesam_tls.providers import registry
from sesam_tls.renew import provider_from_record
from sesam_tls.state import SETTINGS, AcmeSettings, NodeRecord

ACME_RECORD = {"schema": 2, "provider": "acme",
               "provider_settings": {"directory": "https://ca.internal/dir", "http01": "stop-nginx"}}


def test_the_record_is_read_without_importing_the_providers():
    script = (
        "import sys\n"
        "from sesam_tls.state import NodeRecord, AcmeSettings\n"
        f"record = NodeRecord.from_json({ACME_RECORD!r})\n"
        "assert isinstance(record.provider_settings, AcmeSettings), record.provider_settings\n"
        "assert record.to_json()['provider_settings']['http01'] == 'stop-nginx'\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('sesam_tls.providers', 'sesam_tls.nginx')))\n"
        "assert not loaded, loaded\n"
        "assert 'sesam_tls.cli' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_registry_is_the_table_the_record_is_read_with():
    assert registry.PROVIDERS is SETTINGS
    assert registry.AcmeSettings is AcmeSettings


def test_the_provider_gets_the_nginx_handle_its_caller_gives(tmp_path):
    node = Node.from_settings(root=str(tmp_path), env={})
    record = NodeRecord.from_json(ACME_RECORD)
    handle = NginxContainer("the-runs-one", "unix:///nowhere.sock")
    assert registry.build_provider(record, node, nginx=handle).nginx is handle
    assert registry.build_provider(record, node).nginx is None  # the registry makes none itself
    assert provider_from_record(record, node, nginx=handle).nginx is handle
    made = provider_from_record(record, node).nginx  # renew's default: the node's container
    assert isinstance(made, NginxContainer) and made.name == node.container
