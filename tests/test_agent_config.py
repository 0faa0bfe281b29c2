import json
import os
from pathlib import Path

import pytest

from sesam_tls.agent_config import AgentConfig, plan_patch
from sesam_tls.errors import AgentConfigError

CERT = "/etc/nginx/includes.d/ssl/fullchain.pem"
KEY = "/etc/nginx/includes.d/ssl/privkey.pem"
EXAMPLE = Path(__file__).resolve().parents[1] / "testbed" / "sesam-agent-config.example.json"


def example_text() -> str:
    return EXAMPLE.read_text()


def test_patch_sets_container_paths_and_keeps_everything_else_in_order():
    old = json.loads(example_text())
    new_text = plan_patch(example_text(), CERT, KEY, source=Path("c.json"))
    new = json.loads(new_text)
    assert new["nginx"] == {**old["nginx"], "ssl_cert": CERT, "ssl_key": KEY}
    assert list(new) == list(old)
    for key in old:
        if key != "nginx":
            assert new[key] == old[key]
    assert list(new["nginx"])[: len(old["nginx"])] == list(old["nginx"])


def test_patch_creates_missing_nginx_section_last():
    text = '{"docker_username": "u", "docker_password": "s3cret", "sesam-node": {"tag": "x"}}'
    new = json.loads(plan_patch(text, CERT, KEY, source=Path("c.json")))
    assert list(new) == ["docker_username", "docker_password", "sesam-node", "nginx"]
    assert new["nginx"] == {"ssl_cert": CERT, "ssl_key": KEY}


def test_nothing_to_do_when_already_set():
    text = plan_patch(example_text(), CERT, KEY, source=Path("c.json"))
    assert plan_patch(text, CERT, KEY, source=Path("c.json")) is None


def test_keeps_indentation_style():
    text = '{\n    "a": 1,\n    "nginx": {}\n}\n'
    assert '\n    "nginx": {\n        "ssl_cert"' in plan_patch(text, CERT, KEY, source=Path("c.json"))


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"docker_password": "s3cret",', "not valid JSON (line 1"),
        ("[1, 2]", "not a JSON object"),
        ('{"docker_password": "s3cret", "nginx": "on"}', "'nginx' entry is not an object"),
        ('{"docker_password": "s3cret", "nginx": {}, "nginx": {}}', "key 'nginx' twice"),
        ("", "not valid JSON"),
    ],
)
def test_bad_config_is_refused_without_leaking_secrets(text, reason):
    with pytest.raises(AgentConfigError) as info:
        plan_patch(text, CERT, KEY, source=Path("/etc/sesam-agent/config.json"))
    message = str(info.value)
    assert reason in message
    assert "/etc/sesam-agent/config.json" in message
    assert "s3cret" not in message


def test_write_keeps_mode_and_refuses_a_concurrent_change(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(example_text())
    os.chmod(path, 0o640)
    config = AgentConfig.read(path)
    new = config.plan(CERT, KEY)
    config.write(new)
    assert path.stat().st_mode & 0o777 == 0o640
    assert json.loads(path.read_text())["nginx"]["ssl_cert"] == CERT

    config = AgentConfig.read(path)
    path.write_text(example_text())  # someone else edits it meanwhile
    with pytest.raises(AgentConfigError, match="changed by someone else"):
        config.write(b"{}\n")
    assert path.read_text() == example_text()
    assert not [p for p in tmp_path.iterdir() if p.name != "config.json"]


def test_missing_config_names_the_file(tmp_path):
    with pytest.raises(AgentConfigError, match=str(tmp_path / "nope.json") + " not found"):
        AgentConfig.read(tmp_path / "nope.json")
