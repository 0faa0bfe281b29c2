"""One exception tree for the whole tool; each kind carries its exit code.

The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``.
Messages name the file or value and the reason, and never contain secrets
(passwords, key material, the agent config's content).
"""

from __future__ import annotations

__all__ = [
    "SesamTLSError",
    "UsageError",
    "InputError",
    "AgentConfigError",
    "StorageError",
    "DockerError",
    "DeployError",
    "IssuanceError",
    "RefusedCertificate",
    "LockError",
    "AttentionNeeded",
    "EXIT_CODES",
    "one_line",
]


def one_line(exc: BaseException, limit: int = 240) -> str:
    """The first line of a lower-level error, cut to ``limit``: for wrapping it in one of ours."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


class SesamTLSError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code = 1


class UsageError(SesamTLSError):
    """A value given by the caller is not acceptable (name, key type, option)."""

    exit_code = 2


class InputError(SesamTLSError):
    """A file handed to the tool (certificate, key, bundle) is unusable."""

    exit_code = 3


class AgentConfigError(SesamTLSError):
    """The sesam-agent config cannot be read, parsed or safely written."""

    exit_code = 4


class StorageError(SesamTLSError):
    """The ssl folder or the state folder cannot be written."""

    exit_code = 5


class DockerError(SesamTLSError):
    """The Docker engine or the nginx container cannot be reached or driven."""

    exit_code = 6


class DeployError(SesamTLSError):
    """nginx did not take the new certificate; the previous one was restored."""

    exit_code = 7


class IssuanceError(SesamTLSError):
    """The provider could not produce a certificate (CA refused, challenge failed)."""

    exit_code = 8


class RefusedCertificate(IssuanceError):
    """The provider issued a certificate that the gate refused; it was not deployed.

    Its own class because the CA has issued it all the same: a renewal must
    not order again soon (duplicate certificates are rate-limited).
    """


class LockError(SesamTLSError):
    """Another sesam-tls run holds the node's lock."""

    exit_code = 9


class AttentionNeeded(SesamTLSError):
    """Nothing failed, but a human must act (certificate expiring, not renewable)."""

    exit_code = 10


#: Documented exit codes, for the README and ``--help``.
EXIT_CODES = {
    0: "success",
    1: "unexpected error",
    **{
        cls.exit_code: (cls.__doc__ or "").strip().splitlines()[0]
        for cls in (
            UsageError,
            InputError,
            AgentConfigError,
            StorageError,
            DockerError,
            DeployError,
            IssuanceError,
            LockError,
            AttentionNeeded,
        )
    },
}
