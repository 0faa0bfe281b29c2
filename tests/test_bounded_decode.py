"""CPU bombs and hangs in the operator's files end within seconds in one error line (issue 11, item 6).

Each crafted file starts from a real one (made by cryptography) whose
iteration INTEGER is patched in the DER, lengths re-encoded. The commands run
in a subprocess with a generous time limit: on code without the bounds they
run for minutes or forever, and the time limit turns that into a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from sesam_tls.pemio import MAX_INPUT

from . import certgen as g
from .helpers import input_writer, make_root, tree_digest

NOW = dt.datetime.now(dt.timezone.utc)
EC = g.pki(now=NOW)
PW = g.PASSWORD
LIMIT = 30  # seconds: the bounded runs end in about one; the unbounded ones take minutes
SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_cli(*args: str, env: Optional[dict[str, str]] = None, timeout: float = LIMIT, **kw) -> subprocess.CompletedProcess:
    """``python -m sesam_tls ARGS`` with a time limit: TimeoutExpired (a failure) if it hangs."""
    full_env = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sesam_tls", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        **kw,
    )


def check_only(root: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run_cli("import", *args, "--root", str(root), "--no-restart", "--check-only", **kw)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("sesam-tls: error:")]


# a small DER editor, for the tests only -------------------------------------------


def _tlv(data: bytes, i: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``i``."""
    tag, first = data[i], data[i + 1]
    if first < 0x80:
        return tag, i + 2, i + 2 + first
    count = first & 0x7F
    length = int.from_bytes(data[i + 2 : i + 2 + count], "big")
    return tag, i + 2 + count, i + 2 + count + length


def _encode(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + g._der_len(len(content)) + content


def _elements(data: bytes) -> Optional[list[tuple[int, bytes]]]:
    out, i = [], 0
    try:
        while i < len(data):
            tag, start, end = _tlv(data, i)
            if end > len(data) or tag == 0:
                return None
            out.append((tag, data[start:end]))
            i = end
    except IndexError:
        return None
    return out


Patch = Callable[[tuple, int], Optional[int]]


def patch_integers(data: bytes, patch: Patch, path: tuple = ()) -> bytes:
    """``data`` with each INTEGER for which ``patch(path, value)`` returns a number replaced by it.

    ``path`` holds the child indexes from the top; an OCTET STRING that holds
    DER (PKCS#12's authSafe and SafeContents) is opened and marked with "o".
    """
    elements = _elements(data)
    assert elements is not None
    out = b""
    for index, (tag, content) in enumerate(elements):
        here = (*path, index)
        if tag & 0x20:
            content = patch_integers(content, patch, here)
        elif tag == 0x04 and content[:1] == b"\x30" and _elements(content) is not None:
            content = patch_integers(content, patch, (*here, "o"))
        elif tag == 0x02:
            new = patch(here, int.from_bytes(content, "big", signed=True))
            if new is not None:
                content = new.to_bytes((new.bit_length() + 8) // 8, "big", signed=True)
        out += _encode(tag, content)
    return out


def p12(rounds: int = 2048, *, password: Optional[bytes] = PW) -> bytes:
    enc = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(rounds)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password or b"")
    )
    return pkcs12.serialize_key_and_certificates(b"node", EC.key, EC.leaf, [EC.inter.cert], enc)


def mac_iterations(count: int) -> Patch:
    """The MAC's iteration count: PFX (0) -> macData (2) -> iterations (2)."""
    return lambda path, value: count if path == (0, 2, 2) else None


def kdf_iterations(count: int) -> Patch:
    """Every iteration count but the MAC's (PBKDF2 of the shrouded key bag and the encrypted certificates)."""
    return lambda path, value: count if value == 2048 and path != (0, 2, 2) else None


@pytest.fixture
def root(tmp_path):
    return make_root(tmp_path)


@pytest.fixture
def write(tmp_path):
    return input_writer(tmp_path / "in")


# PKCS#12 and PKCS#8 iteration counts ------------------------------------------------


def test_the_patch_changes_only_the_count():
    data = p12()
    assert patch_integers(data, lambda p, v: None) == data
    for patch in (mac_iterations(4096), kdf_iterations(4096)):
        changed = patch_integers(data, patch)
        assert changed != data
        assert patch_integers(changed, lambda p, v: 2048 if v == 4096 else None) == data


def test_a_normal_pkcs12_file_still_imports(root, write, tmp_path):
    p = write("node.p12", p12())
    pw = write("pw", PW)
    os.chmod(pw, 0o600)
    result = check_only(root, "--cert", p, "--password-file", pw)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")


def without_mac(data: bytes) -> bytes:
    """The PFX without its MacData: OpenSSL then runs the key derivation unchecked."""
    ((tag, content),) = _elements(data)
    kept = _elements(content)[:2]
    return _encode(tag, b"".join(_encode(t, c) for t, c in kept))


def test_without_its_mac_the_file_still_loads():
    loaded = pkcs12.load_pkcs12(without_mac(p12()), PW)
    assert loaded.key is not None and loaded.cert is not None


@pytest.mark.parametrize(
    "what, crafted, count",
    [
        ("MAC 2^31-1", lambda: patch_integers(p12(), mac_iterations(2**31 - 1)), 2**31 - 1),
        ("MAC 50 million", lambda: patch_integers(p12(), mac_iterations(50_000_000)), 50_000_000),
        ("PBKDF2 2^31-1, no MAC", lambda: patch_integers(without_mac(p12()), kdf_iterations(2**31 - 1)), 2**31 - 1),
        ("PBKDF2 50 million, no MAC", lambda: patch_integers(without_mac(p12()), kdf_iterations(50_000_000)), 50_000_000),
        ("PBKDF2 50 million, with its MAC", lambda: patch_integers(p12(), kdf_iterations(50_000_000)), 50_000_000),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_pkcs12_iteration_bomb_is_refused_before_any_work(root, write, what, crafted, count):
    crafted = write("bomb.p12", crafted())
    pw = write("pw", PW)
    os.chmod(pw, 0o600)
    before = tree_digest(root)
    started = time.monotonic()
    result = run_cli("import", "--cert", crafted, "--password-file", pw, "--root", str(root), "--no-restart")
    assert time.monotonic() - started < LIMIT
    assert result.returncode == 3, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert crafted in lines[0] and f"{count:,}" in lines[0] and "1,000,000" in lines[0]
    assert "Traceback" not in result.stderr
    assert tree_digest(root) == before


def test_an_unprotected_pkcs12_bomb_is_refused_too(root, write):
    """No password at all: the MAC alone is the bomb (tried with None and with b'')."""
    data = pkcs12.serialize_key_and_certificates(
        b"node", EC.key, EC.leaf, None, serialization.NoEncryption()
    )
    crafted = write("open.p12", patch_integers(data, mac_iterations(2**31 - 1)))
    result = check_only(root, "--cert", crafted)
    assert result.returncode == 3, result.stderr
    assert f"{2**31 - 1:,}" in result.stderr and crafted in result.stderr


@pytest.mark.parametrize("encoding", ["pem", "der"])
def test_an_encrypted_pkcs8_key_with_a_pbkdf2_bomb_is_refused(root, write, encoding):
    enc = serialization.BestAvailableEncryption(PW)  # PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC
    der = EC.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, enc)
    counts = []
    crafted_der = patch_integers(der, lambda p, v: counts.append(v) or (2**31 - 1 if v > 1000 else None))
    assert counts, "the PBKDF2 iteration count was not found"
    if encoding == "pem":
        import base64
        import textwrap

        body = "\n".join(textwrap.wrap(base64.b64encode(crafted_der).decode(), 64))
        data = f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n-----END ENCRYPTED PRIVATE KEY-----\n".encode()
    else:
        data = crafted_der
    key = write(f"key.{encoding}", data)
    pw = write("pw", PW)
    os.chmod(pw, 0o600)
    result = check_only(root, "--cert", write("cert.pem", g.pem(EC.leaf, EC.inter.cert)), "--key", key,
                        "--password-file", pw)
    assert result.returncode == 3, result.stderr
    assert key in result.stderr and "2,147,483,647" in result.stderr


# a bundle of many certificates with one name ------------------------------------------


def _bomb_bundle() -> tuple[bytes, int]:
    """As many small self-signed certificates with one name as fit in 1 MiB."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(8)]
    out, count = b"", 0
    while True:
        key = keys[count % len(keys)]
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(count + 1)
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        block = cert.public_bytes(serialization.Encoding.PEM)
        if len(out) + len(block) > MAX_INPUT:
            return out, count
        out += block
        count += 1


@pytest.mark.parametrize("with_key", [True, False], ids=["a key of none of them", "no key"])
def test_a_bundle_of_thousands_of_certificates_with_one_name_ends_in_seconds(root, write, with_key):
    data, count = _bomb_bundle()
    assert count > 2000
    bundle = write("bundle.pem", data)
    key = write("key.pem", g.key_bytes(g.ec_key()))  # belongs to none of them: every pair is looked at
    result = check_only(root, "--cert", bundle, *(["--key", key] if with_key else []))
    assert result.returncode == 3, result.stderr[-2000:]
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr[-2000:]
    assert bundle in lines[0] and f"{count}" in lines[0] and "at most" in lines[0]
    assert len(result.stderr.splitlines()) == 1, result.stderr[-2000:]


def test_twenty_certificates_are_ordered_and_twenty_one_refused():
    from sesam_tls.validate import MAX_CERTIFICATES, Sourced, validate

    assert MAX_CERTIFICATES == 20
    others = [g.pki([f"n{i}.example.com"], now=NOW).leaf for i in range(MAX_CERTIFICATES - 2)]
    certs = [Sourced(c, "in.pem") for c in (EC.leaf, EC.inter.cert, *others)]
    report = validate(certs, [Sourced(EC.key, "key.pem")], now=NOW)
    assert report.ok and report.chain == (EC.inter.cert,)
    extra = [Sourced(g.pki(["n99.example.com"], now=NOW).leaf, "more.pem")]
    report = validate(certs + extra, [Sourced(EC.key, "key.pem")], now=NOW)
    assert [f.code for f in report.errors] == ["too-many-certificates"]
    assert "in.pem, more.pem: 21 certificates" in report.errors[0].message


def test_order_chain_checks_signatures_only_against_the_issuer_name():
    """The chain of a normal bundle with unrelated certificates around: no signature check
    against a certificate whose subject is not the issuer's name."""
    from sesam_tls import validate as v

    calls = []
    real = v.signed_by

    def counting(child, parent):
        calls.append((child, parent))
        return real(child, parent)

    others = [g.pki([f"n{i}.example.com"], now=NOW).leaf for i in range(10)]
    certs = [v.Sourced(c, "in") for c in (EC.leaf, EC.inter.cert, EC.root.cert, *others)]
    for key in (EC.key, g.ec_key()):  # the key's certificate, and no certificate for the key
        calls.clear()
        v.signed_by = counting
        try:
            report = v.validate(certs, [v.Sourced(key, "key")], now=NOW)
        finally:
            v.signed_by = real
        assert report.chain == (EC.inter.cert,) or key is not EC.key
        assert calls
        for child, parent in calls:
            assert parent.subject == child.issuer, (child.subject, parent.subject)


# inputs that never deliver --------------------------------------------------------


FAST = {"SESAM_TLS_INPUT_TIMEOUT": "1"}


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "never.fifo"
    os.mkfifo(path)
    return str(path)


@pytest.mark.parametrize("option", ["--cert", "--key", "--chain", "--password-file", "--agent-config"])
def test_a_fifo_that_never_delivers_ends_in_one_error_line(root, write, fifo, option):
    files = {
        "--cert": write("cert.pem", g.pem(EC.leaf, EC.inter.cert)),
        "--key": write("key.pem", g.key_bytes(EC.key, password=PW)),
    }
    files[option] = fifo
    args = [part for pair in files.items() for part in pair]
    if option != "--password-file":
        pw = write("pw", PW)
        os.chmod(pw, 0o600)
        args += ["--password-file", pw]
    before = tree_digest(root)
    started = time.monotonic()
    # --check-only reads no agent config: that one is read by a real (--no-restart) run.
    run = run_cli if option == "--agent-config" else check_only
    if option == "--agent-config":
        args = ["import", *args, "--no-restart", "--root", str(root)]
    result = run(*args, env=FAST) if run is run_cli else check_only(root, *args, env=FAST)
    assert time.monotonic() - started < LIMIT
    assert result.returncode == {"--password-file": 2, "--agent-config": 4}.get(option, 3), result.stderr
    assert tree_digest(root) == before
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and fifo in lines[0] and "1 s" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_the_default_deadline_is_ten_seconds():
    from sesam_tls.fsutil import input_timeout

    assert input_timeout({}) == 10.0
    assert input_timeout({"SESAM_TLS_INPUT_TIMEOUT": "2.5"}) == 2.5


def test_an_eab_hmac_fifo_ends_in_one_error_line(root, fifo):
    result = run_cli(
        "issue", "-d", "node.example.com", "--eab-kid", "kid", "--eab-hmac-file", fifo,
        "--server", "https://127.0.0.1:9/dir", "--email", "a@example.com", "--agree-tos",
        "--root", str(root), "--no-restart", env=FAST,
    )
    assert result.returncode == 2, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and fifo in lines[0], result.stderr


def test_a_password_pipe_that_delivers_still_works(root, write):
    """``--password-file <(printf pw)``: bash hands a /dev/fd path of a pipe."""
    p = write("node.p12", p12())
    cert_args = f"--cert {p} --root {root} --no-restart --check-only"
    script = f'{sys.executable} -m sesam_tls import {cert_args} --password-file <(printf %s "$PW")'
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True, text=True, timeout=LIMIT,
        env={**os.environ, "PYTHONPATH": SRC, "PW": PW.decode(), **FAST},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")


def test_a_fifo_whose_writer_comes_late_but_in_time_is_read(root, write, fifo):
    p = write("node.p12", p12())

    def writer():
        time.sleep(0.5)
        with open(fifo, "wb") as f:
            f.write(PW + b"\n")

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    result = check_only(root, "--cert", p, "--password-file", fifo, env={"SESAM_TLS_INPUT_TIMEOUT": "20"})
    thread.join(5)
    assert result.returncode == 0, result.stderr


# the walker itself ----------------------------------------------------------------


def test_the_walker_reads_the_counts_of_a_file_made_by_openssl(tmp_path):
    from sesam_tls.der import iteration_counts

    (tmp_path / "c.pem").write_bytes(g.pem(EC.leaf, EC.inter.cert))
    (tmp_path / "k.pem").write_bytes(g.key_bytes(EC.key))
    (tmp_path / "pw").write_bytes(PW)
    subprocess.run(
        ["openssl", "pkcs12", "-export", "-in", tmp_path / "c.pem", "-inkey", tmp_path / "k.pem",
         "-out", tmp_path / "o.p12", "-iter", "600000", "-passout", f"file:{tmp_path / 'pw'}"],
        check=True, capture_output=True, timeout=LIMIT,
    )
    counts = iteration_counts((tmp_path / "o.p12").read_bytes(), pkcs12=True)
    kinds = {kind for kind, _ in counts}
    assert {count for _, count in counts} == {600000}
    assert "MAC" in kinds and "key derivation (PBKDF2)" in kinds
    assert len(counts) >= 3  # the encrypted certificates, the shrouded key, the MAC


def _indefinite(data: bytes) -> bytes:
    """The outer SEQUENCE of ``data`` in BER's indefinite-length form."""
    tag, start, end = _tlv(data, 0)
    return bytes([tag, 0x80]) + data[start:end] + b"\x00\x00"


def test_the_walker_reads_indefinite_lengths():
    from sesam_tls.der import iteration_counts

    data = _indefinite(patch_integers(p12(), mac_iterations(2**31 - 1)))
    assert ("MAC", 2**31 - 1) in iteration_counts(data, pkcs12=True)


@pytest.mark.parametrize(
    "data",
    [
        b"\x30" * 4000,  # nested deeper than any key file, and truncated
        b"\x30\x84\xff\xff\xff\xff",  # a length beyond the end
        b"\x30\x80" + b"\x05\x00" * 30000 + b"\x00\x00",  # more elements than any key file
    ],
    ids=["deep", "long", "many"],
)
def test_the_walker_refuses_what_no_key_file_looks_like(data):
    from sesam_tls.der import DerError, iteration_counts

    with pytest.raises(DerError):
        iteration_counts(data, pkcs12=True)


def test_a_writer_that_never_closes_ends_at_the_deadline(tmp_path):
    from sesam_tls.fsutil import read_bounded

    path = tmp_path / "open.fifo"
    os.mkfifo(path)
    done = threading.Event()

    def writer():
        with open(path, "wb") as f:
            f.write(b"half a password")
            f.flush()
            done.wait(20)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match="no end of file within 0.5 s"):
            read_bounded(path, 1024, timeout=0.5)
    finally:
        done.set()
        thread.join(5)
    assert time.monotonic() - started < LIMIT


def test_a_device_that_never_ends_is_cut_at_the_size_cap():
    from sesam_tls.fsutil import read_bounded

    data, st = read_bounded("/dev/zero", 4096, timeout=5)
    assert len(data) == 4097


def test_pkcs12_work_that_outlasts_the_input_deadline_is_stopped(root, write):
    """Counts inside encrypted parts are seen only by decrypting: the decode runs in a
    child with the input deadline. An honest file (999,999 rounds, under the limit)
    with a deadline far below what its key derivation takes: one error line, fast."""
    slow = write("slow.p12", p12(999_999))
    done = check_only(root, "--cert", slow, "--password-stdin", input=PW.decode(),
                      env={"SESAM_TLS_INPUT_TIMEOUT": "0.02"})
    assert done.returncode == 3, done.stderr
    assert error_lines(done.stderr) == [
        f"sesam-tls: error: {slow}: the PKCS#12 file did not decode within 0.02 s (it asks for too much "
        "key-derivation work); export it again with fewer iterations"
    ]
    again = check_only(root, "--cert", slow, "--password-stdin", input=PW.decode())
    assert again.returncode == 0, again.stderr  # the same file within the normal deadline
