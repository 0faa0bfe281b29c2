"""Each path loads only what it uses (issue 16): checked in a fresh interpreter, by sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_http01_issue_path_does_not_load_the_dns01_machinery():
    mods = loaded_after(
        "import argparse\n"
        "from sesam_tls.providers.acme import Acme\n"
        "from sesam_tls.cli.acme_args import dns01_from_args\n"
        "assert dns01_from_args(argparse.Namespace(challenge='http-01')) is None\n"
    )
    assert "sesam_tls.providers.acme" in mods
    assert "sesam_tls.dns01" not in mods


@pytest.mark.parametrize("module", ["sesam_tls", "sesam_tls.providers.acme", "sesam_tls.providers.acme_net"])
def test_importing_the_acme_provider_loads_no_network_stack(module):
    mods = loaded_after(f"import {module}")
    assert not {"acme", "josepy", "requests", "urllib3", "docker"} & mods
