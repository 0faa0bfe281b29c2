"""Private key types: generation and naming (pure, no I/O).

``cryptography`` is imported when a key is made or described, not when the
names are listed: ``--help`` and a renewal with nothing due list them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from .errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]
else:
    PrivateKey = object

__all__ = [
    "KEY_POLICIES",
    "KEY_TYPES",
    "KEY_TYPE_ALIASES",
    "DEFAULT_KEY_TYPE",
    "PrivateKey",
    "check_key_policy",
    "canonical_key_type",
    "check_key_type",
    "default_key_policy",
    "generate_key",
    "key_type_of",
]

DEFAULT_KEY_TYPE = "ecdsa-p256"

#: ``--key-type`` name -> (algorithm, curve name or RSA bits)
KEY_TYPES: dict[str, tuple[str, object]] = {
    "ecdsa-p256": ("ec", "SECP256R1"),
    "ecdsa-p384": ("ec", "SECP384R1"),
    "rsa-2048": ("rsa", 2048),
    "rsa-3072": ("rsa", 3072),
    "rsa-4096": ("rsa", 4096),
}


#: lego's ``--key-type`` names and certbot's spellings -> ours (``ecdsa``: certbot's default curve).
KEY_TYPE_ALIASES: dict[str, str] = {
    "ec256": "ecdsa-p256",
    "ecdsa": "ecdsa-p256",
    "ec384": "ecdsa-p384",
    "rsa2048": "rsa-2048",
    "rsa3072": "rsa-3072",
    "rsa4096": "rsa-4096",
}


#: What a renewal does with the key: ``reuse`` the live one, or make a ``new`` one.
KEY_POLICIES = ("reuse", "new")


def default_key_policy(provider: str) -> "str | None":
    """A self-signed certificate keeps its key: clients pin it, which is why it is
    self-signed. A CA's certificate gets a new key each time (certbot's default; a
    leaked key then ends with the certificate). An imported one is not renewed here."""
    return {"selfsigned": "reuse", "acme": "new"}.get(provider)


def check_key_policy(name: "str | None") -> "str | None":
    if name is not None and name not in KEY_POLICIES:
        raise UsageError(f"unknown key policy {name!r}: choose one of {', '.join(KEY_POLICIES)}")
    return name


def canonical_key_type(name: str) -> str:
    """Our name for a key type given as ours or as lego/certbot spell it, in any case."""
    lowered = name.strip().lower()
    return check_key_type(KEY_TYPE_ALIASES.get(lowered, lowered) if lowered else name)


def check_key_type(name: str) -> str:
    if name not in KEY_TYPES:
        raise UsageError(f"unknown key type {name!r}: choose one of {', '.join(KEY_TYPES)}")
    return name


def generate_key(name: str) -> "PrivateKey":
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    kind, param = KEY_TYPES[check_key_type(name)]
    if kind == "ec":
        return ec.generate_private_key(getattr(ec, str(param))())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(param))  # type: ignore[call-overload]  # KEY_TYPES values are (kind, object): int() of an object


def key_type_of(key: object) -> str:
    """Describe a private or public key the way ``--key-type`` names it."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa-{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        curve = {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}
        return f"ecdsa-{curve.get(key.curve.name, key.curve.name)}"
    return type(key).__name__
