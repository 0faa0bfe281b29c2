"""Library messages name parameters; the CLI says the flags (issue 13: "library errors speak of
parameters; the CLI maps them to flags")."""

from __future__ import annotations

import pytest

from sesam_tls.cli import in_flags, main
from sesam_tls.dns01 import Dns01Options
from sesam_tls.errors import UsageError


@pytest.mark.parametrize(
    "said, shown",
    [
        ("`http01.port` 0", "--http-port 0"),
        ("`http01.strategy` webroot needs `http01.webroot` DIR", "--http01 webroot needs --webroot DIR"),
        ("`http01.listen`", "--http-address"),
        ("`dns01.tsig_name` needs `dns01.tsig_file`", "--dns-tsig-name needs --dns-tsig-file"),
        ("`dns01.hook_env` X", "--dns-hook-env X"),
        ("`hook_env` X", "--hook-env X"),
        ("`reload_mode`", "--reload-mode"),
        ("`names` and `ips`", "--domain and --ip"),
        ("`confirm`", "--yes"),
        ("`directory` or `staging`", "--server or --staging"),
        # not a parameter: left alone
        ("`sesam-tls status`", "`sesam-tls status`"),
        ("``literal``", "``literal``"),
    ],
)
def test_parameters_become_flags(said, shown):
    assert in_flags(said) == shown


def test_a_python_caller_reads_the_parameter_and_the_cli_the_flag(capsys, tmp_path):
    with pytest.raises(UsageError, match="`dns01.tsig_algorithm` hmac-md5"):
        Dns01Options(server="127.0.0.1:53", tsig_name="k", tsig_algorithm="hmac-md5", secret="c2VjcmV0").check()
    code = main(["issue", "--self-signed", "-d", "a.example", "--days", "0", "--root", str(tmp_path), "--no-restart"])
    err = capsys.readouterr().err
    assert code == 2
    assert "invalid --days 0" in err and "`" not in err
