"""What an operator reads: times to the second in one format, whole days,
no Python reprs, help that never breaks a path or a flag at its hyphen."""

from __future__ import annotations

import re

import pytest

from sesam_tls.cli import VERBS, main

from .acme_fixtures import node_factory  # noqa: F401 - a fixture
from .helpers import make_root
from .test_acme_cli import issue_args, where

HUMAN_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_help_never_breaks_a_word_at_its_hyphen(verb, capsys):
    assert main([verb, "--help"]) == 0
    out = capsys.readouterr().out
    broken = [line for line in out.splitlines() if re.search(r"[A-Za-z0-9/]-$", line)]
    assert broken == []
    assert "/var/lib/sesam-tls)" in out


def test_status_speaks_in_seconds_and_whole_days(tmp_path, capsys):
    root = make_root(tmp_path)
    assert main(["issue", "--self-signed", "-d", "node.example.test", "--days", "90", "--no-restart",
                 "--root", str(root)]) == 0
    capsys.readouterr()
    assert main(["status", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    valid = next(line for line in out.splitlines() if line.startswith("valid:"))
    assert re.fullmatch(rf"valid:\s+{HUMAN_TIME} \.\. {HUMAN_TIME} \((89|90) days left\)", valid), valid
    renewal = next(line for line in out.splitlines() if line.startswith("renewal:"))
    assert re.fullmatch(rf"renewal:\s+(89|90) days left; due at {HUMAN_TIME}", renewal), renewal
    last = next(line for line in out.splitlines() if line.startswith("last attempt:"))
    assert re.fullmatch(rf"last attempt:\s+{HUMAN_TIME}: success", last), last
    assert not re.search(r"\d\.\d days|\.\d{6}|T\d\d:\d\d", out)


@pytest.mark.integration
def test_account_show_prints_lists_as_text(pebble, node_factory, capsys):
    t = node_factory()
    assert main(issue_args(pebble, t.node, "--no-restart", "--email", "ops@example.test")) == 0
    capsys.readouterr()
    assert main(["account", "show", *where(t.node)]) == 0
    out = capsys.readouterr().out
    contact = next(line for line in out.splitlines() if line.startswith("contact:"))
    assert contact.split(None, 1)[1] == "mailto:ops@example.test"
    assert "[" not in out and "'" not in out


def test_an_abbreviated_option_is_refused(tmp_path, capsys):
    """A stored command must not change meaning when a new option shares a prefix."""
    assert main(["renew", "--forc", "--root", str(tmp_path)]) == 2
    assert "unrecognized arguments: --forc" in capsys.readouterr().err


def test_rollback_list_shows_times_as_people_read_them(tmp_path, capsys):
    root = make_root(tmp_path)
    for _ in range(2):
        assert main(["issue", "--self-signed", "-d", "node.example.test", "--no-restart", "--root", str(root)]) == 0
    capsys.readouterr()
    assert main(["rollback", "--list", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    rows = out.splitlines()[1:]
    assert len(rows) == 2 and all(re.search(rf"  {HUMAN_TIME}$", row) for row in rows), out
