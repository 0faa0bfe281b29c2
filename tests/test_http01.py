"""HTTP-01 responders over real loopback sockets: what is served, what is cleaned up, who holds a port."""

from __future__ import annotations

import http.client
import os
import socket
import time
from pathlib import Path

import pytest

from sesam_tls.errors import IssuanceError, UsageError
from sesam_tls.http01 import Http01Options, TokenServer, open_responder, plan, presented, self_check
from sesam_tls.ports import port_holders

from .testbed import free_port

TOKEN = "tok_" + "A" * 40
KEY_AUTH = TOKEN + ".thumbprint"


def get(host: str, port: int, path: str, *, method: str = "GET") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request(method, path, headers={"Host": "node.example.test"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_standalone_serves_live_tokens_on_ipv4_and_ipv6_and_404s_the_rest():
    port = free_port()
    options = Http01Options(strategy="standalone", port=port, listen=("127.0.0.1", "::1"))
    with open_responder(options) as responder:
        with presented(responder, [(TOKEN, KEY_AUTH)]):
            for host in ("127.0.0.1", "::1"):
                assert get(host, port, f"/.well-known/acme-challenge/{TOKEN}") == (200, KEY_AUTH.encode())
                assert get(host, port, f"/.well-known/acme-challenge/{TOKEN}", method="HEAD") == (200, b"")
                assert get(host, port, "/.well-known/acme-challenge/other")[0] == 404
                assert get(host, port, "/")[0] == 404
                assert get(host, port, f"/x/.well-known/acme-challenge/{TOKEN}")[0] == 404
            self_check("node.example.test", port, TOKEN, KEY_AUTH)
        # cleaned up: the token is gone while the server still runs
        assert get("127.0.0.1", port, f"/.well-known/acme-challenge/{TOKEN}")[0] == 404
    # and the port is given back (SO_REUSEADDR: our closed connections may linger in TIME_WAIT)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_presented_cleans_up_when_the_body_fails():
    server = TokenServer(free_port(), ("127.0.0.1",))
    with pytest.raises(RuntimeError), presented(server, [(TOKEN, KEY_AUTH), (TOKEN[::-1] + "x", "other")]):
        assert len(server.tokens) == 2
        raise RuntimeError("boom")
    assert server.tokens == {}


@pytest.mark.parametrize("token", ["../../etc/passwd", "short", "a/b" + "c" * 20, "tok en" + "x" * 20])
def test_unusable_tokens_are_refused(token):
    server = TokenServer(free_port(), ("127.0.0.1",))
    with pytest.raises(IssuanceError, match="unusable challenge token"):
        server.present(token, "x")


def test_standalone_on_a_held_port_names_the_holder():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert any(h.pid == os.getpid() for h in port_holders(port))
        with pytest.raises(IssuanceError, match=rf"port {port}.*held by pid {os.getpid()} "), open_responder(
            Http01Options(strategy="standalone", port=port, listen=("127.0.0.1",))
        ):
            pass
        # auto: the holder is not the managed container (there is none): the error names it and the options
        with pytest.raises(IssuanceError, match=rf"held by pid {os.getpid()} .*`http01.strategy` webroot"), open_responder(
            Http01Options(strategy="auto", port=port, listen=("127.0.0.1",))
        ):
            pass
        with pytest.raises(IssuanceError, match=f"held by pid {os.getpid()}"):
            plan(Http01Options(strategy="auto", port=port, listen=("127.0.0.1",)))


def test_auto_on_a_free_port_serves_standalone():
    port = free_port()
    options = Http01Options(strategy="auto", port=port, listen=("127.0.0.1",))
    assert "free" in plan(options)
    with open_responder(options) as responder, presented(responder, [(TOKEN, KEY_AUTH)]):
        self_check("node.example.test", port, TOKEN, KEY_AUTH)


def test_webroot_writes_token_files_and_removes_only_its_own(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    options = Http01Options(strategy="webroot", webroot=root)
    with open_responder(options) as responder:
        folder = root / ".well-known/acme-challenge"
        with presented(responder, [(TOKEN, KEY_AUTH)]):
            path = folder / TOKEN
            assert path.read_text() == KEY_AUTH
            assert path.stat().st_mode & 0o777 == 0o644
            assert folder.stat().st_mode & 0o777 == 0o755
        assert not path.exists()
    assert not (root / ".well-known").exists()  # the folders it made are gone

    (root / ".well-known/acme-challenge").mkdir(parents=True)
    (root / ".well-known/acme-challenge/keep").write_text("not ours")
    with open_responder(options) as responder, presented(responder, [(TOKEN, KEY_AUTH)]):
        pass
    assert (root / ".well-known/acme-challenge/keep").read_text() == "not ours"
    assert sorted(os.listdir(root / ".well-known/acme-challenge")) == ["keep"]


def test_self_check_says_what_was_wrong(tmp_path):
    port = free_port()
    with pytest.raises(IssuanceError, match=rf"self-check failed for node.example.test: nothing answers "
                                            rf"http://node.example.test:{port}/.well-known"):
        self_check("node.example.test", port, TOKEN, KEY_AUTH, timeout=2)
    with open_responder(Http01Options(strategy="standalone", port=port, listen=("127.0.0.1",))) as responder:
        with presented(responder, [(TOKEN, "something else")]), pytest.raises(IssuanceError, match="different body"):
            self_check("node.example.test", port, TOKEN, KEY_AUTH)
        with pytest.raises(IssuanceError, match="answered HTTP 404"):
            self_check("node.example.test", port, TOKEN, KEY_AUTH)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strategy": "ftp"}, "unknown --http01 'ftp'"),
        ({"port": 0}, "invalid --http-port 0"),
        ({"port": 65536}, "invalid --http-port 65536"),
        ({"strategy": "webroot"}, "needs --webroot DIR"),
        ({"strategy": "standalone", "webroot": Path("/srv")}, "only used with --http01 webroot"),
        ({"listen": ("localhost",)}, "invalid --http-address 'localhost'"),
    ],
)
def test_options_are_checked(kwargs, message):
    """The library names its parameters (`http01.port`); the CLI says the flag (--http-port)."""
    from sesam_tls.cli import in_flags

    with pytest.raises(UsageError, match="`http01[.]") as raised:
        Http01Options(**kwargs)
    assert message in in_flags(str(raised.value))


def test_webroot_that_is_not_a_folder(tmp_path):
    with pytest.raises(UsageError, match="not a folder"), open_responder(
        Http01Options(strategy="webroot", webroot=tmp_path / "missing")
    ):
        pass


def test_a_port_that_stays_busy_after_stopping_nginx_is_named_within_the_wait():
    """_bind_when_free retries (the one waiting helper) and then says who holds the port."""
    import time

    from sesam_tls.http01 import _bind_when_free

    port = free_port()
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen()
    started = time.monotonic()
    try:
        with pytest.raises(IssuanceError, match=f"port {port} stays busy: 127.0.0.1 port {port}"):
            _bind_when_free(port, ["127.0.0.1"], timeout=0.5)
    finally:
        holder.close()
    assert time.monotonic() - started < 30
    server = _bind_when_free(port, ["127.0.0.1"], timeout=0.5)  # free now: bound at once
    server.stop()


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


def test_standalone_answers_what_is_not_a_token_request_with_one_status_line():
    port = free_port()
    with open_responder(Http01Options(strategy="standalone", port=port, listen=("127.0.0.1",))) as responder:
        with presented(responder, [(TOKEN, KEY_AUTH)]):
            assert raw_exchange(port, b"nonsense\r\n\r\n").startswith(b"HTTP/1.0 400 ")
            assert raw_exchange(port, b"GET /" + b"a" * 17000).startswith(b"HTTP/1.0 400 ")  # over the cap
            assert raw_exchange(port, f"POST /.well-known/acme-challenge/{TOKEN} HTTP/1.1\r\n"
                                      "Content-Length: 0\r\n\r\n".encode()).startswith(b"HTTP/1.0 501 ")
            answer = raw_exchange(port, f"GET /.well-known/acme-challenge/{TOKEN}?x=1 HTTP/1.1\r\n"
                                        "Host: node.example.test\r\nAccept: */*\r\n\r\n".encode())
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.0 200 OK\r\n") and b"Content-Length: %d" % len(KEY_AUTH) in head
            assert body == KEY_AUTH.encode()


def test_a_client_that_sends_nothing_does_not_hold_up_the_ca():
    port = free_port()
    with open_responder(Http01Options(strategy="standalone", port=port, listen=("127.0.0.1",))) as responder:
        with presented(responder, [(TOKEN, KEY_AUTH)]):
            silent = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
            try:
                silent[0].sendall(b"GET /.well-known/acme-challenge/")  # half a request line, then nothing
                for _ in range(5):
                    assert get("127.0.0.1", port, f"/.well-known/acme-challenge/{TOKEN}") == (200, KEY_AUTH.encode())
            finally:
                for s in silent:
                    s.close()


def test_a_client_that_trickles_its_request_is_cut_off_at_the_deadline(monkeypatch):
    """The request has one deadline all told: a byte every 0.1 s does not keep the thread."""
    import select

    from sesam_tls import http01

    monkeypatch.setattr(http01, "_REQUEST_TIMEOUT", 0.3)
    port = free_port()
    with open_responder(Http01Options(strategy="standalone", port=port, listen=("127.0.0.1",))) as responder:
        with presented(responder, [(TOKEN, KEY_AUTH)]), socket.create_connection(("127.0.0.1", port)) as s:
            closed = False
            for _ in range(50):  # 5 s of trickling at most
                try:
                    s.sendall(b"G")
                    if select.select([s], [], [], 0.1)[0] and s.recv(100) == b"":
                        closed = True
                        break
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
            assert closed
            assert get("127.0.0.1", port, f"/.well-known/acme-challenge/{TOKEN}") == (200, KEY_AUTH.encode())


def test_connections_beyond_the_cap_are_closed_and_the_server_goes_on(monkeypatch):
    from sesam_tls import http01

    monkeypatch.setattr(http01, "_MAX_CONNECTIONS", 3)
    port = free_port()
    with open_responder(Http01Options(strategy="standalone", port=port, listen=("127.0.0.1",))) as responder:
        with presented(responder, [(TOKEN, KEY_AUTH)]):
            held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as extra:
                    extra.sendall(f"GET /.well-known/acme-challenge/{TOKEN} HTTP/1.0\r\n\r\n".encode())
                    try:
                        assert extra.recv(100) == b""  # closed unanswered: three are open already
                    except ConnectionResetError:
                        pass
            finally:
                for s in held:
                    s.close()
            answered = None
            for _ in range(100):  # once the server has seen the held ones go, it answers again
                try:
                    answered = get("127.0.0.1", port, f"/.well-known/acme-challenge/{TOKEN}")
                    break
                except (ConnectionError, http.client.HTTPException):
                    time.sleep(0.01)
            assert answered == (200, KEY_AUTH.encode())
