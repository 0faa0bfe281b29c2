"""Pure pieces of the ACME provider: problem explanations, Retry-After, name checks."""

from __future__ import annotations

import datetime as dt

import pytest
from acme import messages

from sesam_tls.errors import UsageError
from sesam_tls.providers.acme import LETSENCRYPT, LETSENCRYPT_STAGING, check_names
from sesam_tls.providers.acme_net import retry_after_seconds
from sesam_tls.providers.acme_problems import challenge_failure, problem_text, rate_limited
from sesam_tls.providers.base import CertRequest

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def problem(code: str, detail: str, **kwargs) -> messages.Error:
    return messages.Error(typ=f"urn:ietf:params:acme:error:{code}", detail=detail, **kwargs)


@pytest.mark.parametrize(
    "code, detail, cause",
    [
        ("connection", "127.0.0.1: Fetching http://n/.well-known/acme-challenge/x: Connection refused",
         "open the Sesam inbound firewall rule 80/HTTP from ANY"),
        ("connection", "Timeout during connect (likely firewall problem)", "the DNS of n.example does not point at this node"),
        ("dns", "No valid IP addresses found for n.example", "has no usable A/AAAA record"),
        ("unauthorized", "Invalid response from http://n.example/.well-known/acme-challenge/x: 404",
         "a proxy, load balancer or CDN in front of this node answers port 80"),
        ("incorrectResponse", "The key authorization file from the server did not match", "answered something else"),
        ("caa", "CAA record for n.example prevents issuance", "a CAA record in the DNS of n.example"),
        ("rejectedIdentifier", "Invalid identifier", "does not issue certificates for n.example"),
        ("serverInternal", "something broke", "80/HTTP from ANY"),
    ],
)
def test_challenge_failures_name_the_likely_cause(code, detail, cause):
    text = challenge_failure("n.example", problem(code, detail), port=80)
    assert text.startswith(f"the CA could not validate n.example: {detail} ({code}); likely cause: ")
    assert cause in text
    assert "\n" not in text


def test_a_failure_without_a_problem_document():
    assert "became invalid without a reason" in challenge_failure("n.example", None, port=80)


def test_problem_text_is_one_line_with_subproblems():
    sub = problem("rejectedIdentifier", "no\nthanks", identifier=messages.Identifier(typ=messages.IDENTIFIER_FQDN,
                                                                                       value="bad.example"))
    text = problem_text(problem("compound", "several problems", subproblems=(sub,)))
    assert text == "several problems (compound) [bad.example: no thanks (rejectedIdentifier)]"


@pytest.mark.parametrize(
    "seconds, expected",
    [
        (None, "the CA did not say when a retry is allowed"),
        (30, "a retry is allowed after 2026-03-01T12:00:30+00:00 (in 30 s)"),
        (3600, "a retry is allowed after 2026-03-01T13:00:00+00:00 (in 60 min)"),
        (7 * 3600 + 1800, "a retry is allowed after 2026-03-01T19:30:00+00:00 (in 7 h 30 min)"),
    ],
)
def test_rate_limited_says_when(seconds, expected):
    text = rate_limited("too many certificates (5) for this exact set of identifiers", seconds, now=NOW)
    assert text.startswith("the CA's rate limit was hit: too many certificates")
    assert expected in text


@pytest.mark.parametrize(
    "header, seconds",
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        ("Sun, 01 Mar 2026 12:05:00 GMT", 300.0),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),
        ("soon", None),
    ],
)
def test_retry_after_header(header, seconds):
    assert retry_after_seconds(header, now=NOW) == seconds


@pytest.mark.parametrize(
    "directory, profile, warned",
    [
        (LETSENCRYPT, None, True),
        (LETSENCRYPT_STAGING, "classic", True),
        (LETSENCRYPT, "shortlived", False),
        ("https://ca.internal/acme/directory", None, False),
    ],
)
def test_ip_addresses_at_lets_encrypt_need_the_shortlived_profile(directory, profile, warned):
    warnings = check_names(CertRequest.build(["n.example"], ["192.0.2.1"]), directory=directory, profile=profile)
    assert bool(warnings) == warned
    if warned:
        assert "`profile` shortlived" in warnings[0]
    assert check_names(CertRequest.build(["n.example"]), directory=directory, profile=profile) == []


def test_wildcards_are_refused_even_when_the_request_allowed_them():
    with pytest.raises(UsageError, match="wildcards cannot be validated over HTTP-01"):
        check_names(CertRequest.build(["*.n.example"]), directory=LETSENCRYPT, profile=None)
