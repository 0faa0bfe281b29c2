from pathlib import Path

from sesam_tls.node import Node


def test_defaults_are_sesam_guide_paths():
    node = Node.from_settings(env={})
    assert node.ssl_dir == Path("/sesam/nginx/conf/ssl")
    assert node.cert_path == Path("/sesam/nginx/conf/ssl/fullchain.pem")
    assert node.container_cert_path == "/etc/nginx/includes.d/ssl/fullchain.pem"
    assert node.container_key_path == "/etc/nginx/includes.d/ssl/privkey.pem"
    assert node.agent_config == Path("/etc/sesam-agent/config.json")
    assert node.container == "nginx"
    assert node.state_dir == Path("/var/lib/sesam-tls")
    assert node.docker_host is None


def test_root_prefixes_defaults_but_not_explicit_paths(tmp_path):
    node = Node.from_settings(root=str(tmp_path), agent_config="/x/config.json", env={})
    assert node.ssl_dir == tmp_path / "sesam/nginx/conf/ssl"
    assert node.state_dir == tmp_path / "var/lib/sesam-tls"
    assert node.agent_config == Path("/x/config.json")
    # the container's view does not move with the root
    assert node.container_cert_path == "/etc/nginx/includes.d/ssl/fullchain.pem"


def test_environment_then_arguments(tmp_path):
    env = {"SESAM_TLS_ROOT": str(tmp_path), "SESAM_TLS_CONTAINER": "edge", "DOCKER_HOST": "unix:///d.sock"}
    node = Node.from_settings(env=env)
    assert node.container == "edge" and node.docker_host == "unix:///d.sock"
    assert node.ssl_dir == tmp_path / "sesam/nginx/conf/ssl"
    assert Node.from_settings(env=env, container="nginx2").container == "nginx2"
