"""Fuzz every parser of outside input with hypothesis, on a bounded budget.

The inputs are real files (PEM, DER, PKCS#12, encrypted keys, agent configs,
metadata, ARI answers) cut, spliced, bit-flipped and mixed with noise. For
each one the parser returns cleanly or raises one of the project's own errors
(one line for the operator, no traceback), within hypothesis's deadline, and
writes nothing. ``FUZZED`` counts the inputs, for the README's figures.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sesam_tls import CertRequest, DeployOptions, Node, SelfSigned, issue
from sesam_tls.agent_config import plan_patch
from sesam_tls.api import import_certificate
from sesam_tls.errors import SesamTLSError
from sesam_tls.pemio import decode
from sesam_tls.renew import _update_ari
from sesam_tls.renewal import decide
from sesam_tls.state import NodeRecord, load_record

from . import certgen as g
from .helpers import make_root, tree_digest

# Hypothesis warns when it prints a 50 kB example; cryptography when a damaged PKCS#12 is read as BER.
pytestmark = [pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning"),
              pytest.mark.filterwarnings("ignore:PKCS#12 bundle could not be parsed as DER:UserWarning")]

NAME = g.NAME
NOW = dt.datetime.now(dt.timezone.utc)
# The gate (`make test`, CI) runs the same mutations every time (derandomize), so a landing never
# fails on a new random find; `SESAM_TLS_FUZZ_RANDOM=1 make test` (or `make fuzz`) explores new ones,
# and what it finds becomes a test of its own (as the unknown-curve certificate in test_import_decode.py).
EXPLORE = os.environ.get("SESAM_TLS_FUZZ_RANDOM") == "1"
FUZZ = settings(max_examples=2000 if EXPLORE else 400, deadline=5000,
                suppress_health_check=[HealthCheck.too_slow], database=None, derandomize=not EXPLORE)
FUZZED = {"count": 0}

# real inputs to start from -------------------------------------------------------------------

_PKI = g.pki([NAME], now=NOW)
_RSA = g.pki([NAME], leaf_key=g.rsa_key(2048), now=NOW)
SAMPLES = [
    g.pem(_PKI.leaf, _PKI.inter.cert),
    g.pem(_PKI.leaf, _PKI.inter.cert, _PKI.root.cert) + g.key_bytes(_PKI.key),
    g.pem(_PKI.root.cert),
    g.der(_PKI.leaf),
    g.key_bytes(_PKI.key),
    g.key_bytes(_RSA.key, "traditional"),
    g.key_bytes(_PKI.key, password=g.PASSWORD),
    g.key_bytes(_RSA.key, "traditional", password=g.PASSWORD),
    g.key_bytes(_PKI.key, encoding="der"),
    g.p12(_PKI.key, _PKI.leaf, [_PKI.inter.cert]),
    g.p12(_RSA.key, _RSA.leaf, [_RSA.inter.cert], password=g.PASSWORD, legacy=True),
    b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    b"-----BEGIN PKCS7-----\nMIIB\n-----END PKCS7-----\n",
]


@st.composite
def mangled(draw: Any, samples: list[bytes] = SAMPLES) -> bytes:
    """A real input with a few bytes flipped, cut, inserted or spliced from another."""
    data = bytearray(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "splice", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif op == "splice":
            other = draw(st.sampled_from(samples))
            data[at:] = other[draw(st.integers(0, len(other))) :]
        else:
            del data[at:]
    return bytes(data)


def _with_noise(samples: list[bytes]) -> Any:
    pieces = st.one_of(mangled(samples), st.sampled_from(samples), st.binary(max_size=256))
    return st.one_of(
        st.binary(max_size=1024),
        mangled(samples),
        st.lists(pieces, min_size=1, max_size=3).map(b"\n".join),
    )


INPUTS = _with_noise(SAMPLES)


def counted() -> None:
    FUZZED["count"] += 1


# certificate and key files --------------------------------------------------------------------


@FUZZ
@given(data=INPUTS, password=st.sampled_from([None, g.PASSWORD, b"wrong"]))
@example(data=b"-----BEGIN " * 1000, password=None)
@example(data=b"\x30\x84\xff\xff\xff\xff" + b"\x00" * 64, password=None)
def test_decode_any_bytes(data: bytes, password: bytes | None) -> None:
    counted()
    try:
        decode(data, source="fuzz.pem", password=lambda source: password)
    except SesamTLSError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(
    files=st.lists(INPUTS, min_size=1, max_size=3),
    password=st.sampled_from([None, g.PASSWORD]),
)
def test_import_any_files(files: list[bytes], password: bytes | None) -> None:
    """``import --check-only``: decode, validate, choose leaf, key and chain: a report, or InputError."""
    counted()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, content in enumerate(files):
            path = Path(tmp, f"input{i}")
            path.write_bytes(content)
            paths.append(path)
        before = tree_digest(Path(tmp))
        node = Node.from_settings(root=str(Path(tmp, "root")), env={})
        try:
            report = import_certificate(paths[0], key_file=paths[1] if len(paths) > 1 else None,
                                        chain_file=paths[2] if len(paths) > 2 else None, password=password,
                                        node=node, domains=[NAME], check_only=True)
            for finding in report.findings:
                assert "\n" not in finding.message
            report.bundle()
        except SesamTLSError as exc:
            assert "\n" not in str(exc)
        assert tree_digest(Path(tmp)) == before


# the agent config -----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
CONFIGS = st.fixed_dictionaries(
    {"docker_username": st.text(max_size=20), "docker_password": st.text(max_size=40)},
    optional={"nginx": st.dictionaries(st.sampled_from(["disable", "ssl_cert", "ssl_key", "x"]), JSON_VALUES),
              "sesam-node": JSON_VALUES},
)
CERT_PATH, KEY_PATH = "/etc/nginx/includes.d/ssl/fullchain.pem", "/etc/nginx/includes.d/ssl/privkey.pem"


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


@st.composite
def config_texts(draw: Any) -> str:
    data = draw(CONFIGS)
    text = json.dumps(data, indent=draw(st.sampled_from([None, 2, 4, "\t"])), ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):  # and then someone edits it by hand
        chars = list(text)
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(chars)))
            chars[at:at] = draw(st.text(alphabet='{}[],:"\\ 0123456789.eE-+truefalsnNI\n', min_size=1, max_size=4))
        text = "".join(chars)
    return text


@FUZZ
@given(text=st.one_of(config_texts(), st.text(max_size=300)))
@example(text='{"a": 1e400, "nginx": {}}')
@example(text='{"a": NaN, "nginx": {}}')
@example(text='{"a": -Infinity}')
@example(text="[" * 50_000)
@example(text="{\"a\": " * 50_000)
@example(text='{"nginx": {"ssl_cert": 1, "ssl_cert": 2}}')
@example(text='\ufeff{"docker_password": "x"}')
def test_agent_config_patch(text: str) -> None:
    """The patch is refused with AgentConfigError, or is valid JSON that keeps every other value."""
    counted()
    try:
        new = plan_patch(text, CERT_PATH, KEY_PATH, source=Path("/fuzz/config.json"))
    except SesamTLSError as exc:
        assert "\n" not in str(exc)
        return
    if new is None:
        return
    old = json.loads(text)
    out = json.loads(new, parse_constant=_no_constants)  # strict JSON: what the sesam-agent can read
    assert list(out) == list(old) + ([] if "nginx" in old else ["nginx"])
    for key in old:
        if key != "nginx":
            assert out[key] == old[key]
    assert {k: v for k, v in out["nginx"].items() if k not in ("ssl_cert", "ssl_key")} == {
        k: v for k, v in (old.get("nginx") or {}).items() if k not in ("ssl_cert", "ssl_key")
    }
    assert (out["nginx"]["ssl_cert"], out["nginx"]["ssl_key"]) == (CERT_PATH, KEY_PATH)


# metadata ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def managed_metadata(tmp_path_factory) -> tuple[Node, dict[str, Any]]:
    root = make_root(tmp_path_factory.mktemp("fuzz-node"))
    node = Node.from_settings(root=str(root), env={})
    issue(CertRequest.build([NAME]), SelfSigned(), node=node, options=DeployOptions(restart=False))
    return node, json.loads(node.metadata_path.read_bytes())


def _edited(meta: dict[str, Any], section: str, key: str, value: Any) -> bytes:
    """``meta`` with one field changed by hand, as an operator might."""
    out = json.loads(json.dumps(meta))
    if key:
        target = out.setdefault(section, {})
        if isinstance(target, dict):
            target[key] = value
    else:
        out[section] = value
    return json.dumps(out).encode()


def _metadata_variants(meta: dict[str, Any]) -> Any:
    good = json.dumps(meta).encode()
    fields = st.sampled_from([(s, "") for s in ("certificate", "renewal", "request", "history", "provider", "hooks")]
                             + [("certificate", "not_before"), ("certificate", "not_after"), ("renewal", "failures"),
                                ("renewal", "last_failure"), ("renewal", "ari"), ("deployment", "version")])
    texts = st.one_of(
        st.just(good),
        st.builds(lambda f, v: _edited(meta, f[0], f[1], v), fields, st.one_of(JSON_VALUES, TIMES)),
        st.builds(lambda v: _edited(meta, "renewal", "ari", {"chosen": v, "next_poll": v}), TIMES),
        mangled([good]),
        st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(st.sampled_from(list(meta) + ["x"]), JSON_VALUES)),
        st.binary(max_size=200),
        st.just(b"[" * 50_000),
        st.just(json.dumps({**meta, "schema": 10**30}).encode()),
        st.just(json.dumps({**meta, "schema": True}).encode()),
    )
    return texts


def test_metadata_any_bytes(managed_metadata) -> None:
    _node, meta = managed_metadata

    @FUZZ
    @given(data=_metadata_variants(meta))
    def check(data: bytes) -> None:
        counted()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "certificate.json")
            path.write_bytes(data)
            before = tree_digest(Path(tmp))
            try:
                loaded = load_record(path)
            except SesamTLSError as exc:
                assert "\n" not in str(exc)
            else:
                assert isinstance(loaded, NodeRecord)
                for force, days in ((False, None), (True, None), (False, 30)):  # what renew and status do with it
                    decide(loaded, NOW, force=force, days=days)
            assert tree_digest(Path(tmp)) == before

    check()


# ARI answers --------------------------------------------------------------------------------------


def _response(status: int, body: bytes, headers: dict[str, str]) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body
    resp.headers.update(headers)
    resp.url = "https://127.0.0.1:1/fuzz"
    return resp


TIMES = st.one_of(
    st.datetimes(timezones=st.just(dt.timezone.utc)).map(lambda d: d.isoformat()),
    st.sampled_from(["2026-01-01T00:00:00Z", "", "yesterday", "9999-12-31T23:59:59+23:59", "0001-01-01T00:00:00-23:59"]),
    st.integers(), st.none(), st.text(max_size=30),
)
WINDOWS = st.fixed_dictionaries({"suggestedWindow": st.fixed_dictionaries({"start": TIMES, "end": TIMES})},
                                optional={"explanationURL": JSON_VALUES})
ARI_BODIES = st.one_of(
    WINDOWS.map(lambda d: json.dumps(d).encode()),
    JSON_VALUES.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=100),
)
RETRY_AFTER = st.one_of(st.none(), st.integers(-10**12, 10**12).map(str), st.text(max_size=40),
                        st.just("Wed, 21 Oct 2015 07:28:00 GMT"), st.just("Fri, 31 Dec 9999 23:59:59 GMT"))


def test_ari_answers(managed_metadata, monkeypatch) -> None:
    """Whatever the CA's directory and renewalInfo say, renew records something and decides."""
    node, meta = managed_metadata
    base = {**meta, "provider": "acme",
            "provider_settings": {"directory": "https://127.0.0.1:1/dir"},
            "certificate": {**meta["certificate"], "ari_cert_id": "aaaa.bbbb"}}

    @FUZZ
    @given(
        directory=st.one_of(st.just(b'{"renewalInfo": "https://127.0.0.1:1/ari"}'), ARI_BODIES),
        dir_status=st.sampled_from([200, 200, 200, 404, 500]),
        body=ARI_BODIES,
        status=st.sampled_from([200, 200, 200, 404, 429, 503]),
        retry=RETRY_AFTER,
    )
    def check(directory: bytes, dir_status: int, body: bytes, status: int, retry: str | None) -> None:
        counted()
        answers = [_response(dir_status, directory, {}),
                   _response(status, body, {"Retry-After": retry} if retry is not None else {})]
        monkeypatch.setattr(requests, "get", lambda *a, **k: answers.pop(0))
        state = NodeRecord.from_json(base)
        before = tree_digest(node.root)
        changed = _update_ari(state, node, NOW, random.Random(1))
        state = changed or state
        json.dumps(state.to_json(), allow_nan=False)  # what save_record will write
        assert NodeRecord.from_json(state.to_json()) == state
        try:
            decide(state, NOW)
        except SesamTLSError:
            pass
        assert tree_digest(node.root) == before

    check()


def test_fuzz_summary(capsys) -> None:
    with capsys.disabled():
        print(f"\nfuzz: {FUZZED['count']} inputs through the import decoders, the agent config, metadata and ARI")
    assert FUZZED["count"] > 0
