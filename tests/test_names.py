import pytest

from sesam_tls.errors import UsageError
from sesam_tls.names import normalize_domain, normalize_ip
from sesam_tls.providers.base import CertRequest


@pytest.mark.parametrize(
    "given, expected",
    [
        ("node.example.test", "node.example.test"),
        ("Node.Example.TEST.", "node.example.test"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("localhost", "localhost"),
        ("*.example.test", "*.example.test"),
        ("a-b.c0.example", "a-b.c0.example"),
    ],
)
def test_valid_domains(given, expected):
    assert normalize_domain(given) == expected


@pytest.mark.parametrize(
    "given, reason",
    [
        ("", "empty"),
        ("-bad.example", "label"),
        ("bad-.example", "label"),
        ("under_score.example", "label"),
        ("a" * 64 + ".example", "label"),
        (("a" * 60 + ".") * 5 + "example", "253"),
        ("*.com", "wildcard"),
        ("host.123", "all digits"),
        ("two..dots", "label"),
        ("sp ace.example", "label"),
    ],
)
def test_invalid_domains_name_the_value_and_reason(given, reason):
    with pytest.raises(UsageError) as info:
        normalize_domain(given)
    assert repr(given) in str(info.value)
    assert reason in str(info.value)


def test_wildcard_refused_where_it_cannot_be_validated():
    with pytest.raises(UsageError, match="HTTP-01"):
        normalize_domain("*.example.test", allow_wildcard=False)


def test_ips():
    assert str(normalize_ip("127.0.0.1")) == "127.0.0.1"
    assert str(normalize_ip("[::1]")) == "::1"
    with pytest.raises(UsageError, match="'300.1.1.1'"):
        normalize_ip("300.1.1.1")


def test_request_dedupes_and_limits():
    request = CertRequest.build(["A.example", "a.example", "b.example"], ["127.0.0.1"])
    assert request.names == ("a.example", "b.example")
    assert request.identifiers == ["a.example", "b.example", "127.0.0.1"]
    with pytest.raises(UsageError, match="no names"):
        CertRequest.build([])
    with pytest.raises(UsageError, match="too many names: 101"):
        CertRequest.build([f"n{i}.example" for i in range(101)])
    with pytest.raises(UsageError, match="unknown key type 'rsa-1024'"):
        CertRequest.build(["a.example"], key_type="rsa-1024")
    with pytest.raises(UsageError, match="--days 0"):
        CertRequest.build(["a.example"], days=0)
