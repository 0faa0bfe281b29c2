"""Dead or misleading bits of issue 13, kept from coming back: each test names what it keeps out."""

from sesam_tls import deploy, options
from sesam_tls.ports import Holder, container_holds_port
from sesam_tls.providers.acme_net import Connection


class _PublicOnly:
    """An nginx container that has only the public API: ``inspect()`` and ``name``."""

    name = "nginx"

    def __init__(self, attrs):
        self._attrs = attrs

    def inspect(self):
        return self._attrs

    def __getattr__(self, name):  # any private helper is a layering error, said by name
        raise AssertionError(f"ports.py used NginxContainer.{name}, which is private")


def test_container_holds_port_uses_only_the_public_inspect():
    published = {"State": {"Status": "running", "Pid": 0}, "Id": "abc",
                 "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "80"}]}}}
    assert container_holds_port(_PublicOnly(published), 80, []) is True
    stopped = {**published, "State": {"Status": "exited", "Pid": 0}}
    assert container_holds_port(_PublicOnly(stopped), 80, [Holder(pid=1, command="nginx")]) is False


def test_deploy_does_not_reexport_what_moved_to_options():
    moved = set(options.__all__)
    assert not moved & set(deploy.__all__), "import these from sesam_tls.options"


def test_connection_keeps_no_per_thread_retry_after_nobody_reads():
    assert not hasattr(Connection, "thread_retry_after")
