"""Private key types: generation and naming (pure, no I/O)."""

from __future__ import annotations

from typing import Callable, Union

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .errors import UsageError

__all__ = ["KEY_TYPES", "DEFAULT_KEY_TYPE", "PrivateKey", "generate_key", "key_type_of"]

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

DEFAULT_KEY_TYPE = "ecdsa-p256"

KEY_TYPES: dict[str, Callable[[], PrivateKey]] = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "rsa-3072": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
    "rsa-4096": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
}


def check_key_type(name: str) -> str:
    if name not in KEY_TYPES:
        raise UsageError(f"unknown key type {name!r}: choose one of {', '.join(KEY_TYPES)}")
    return name


def generate_key(name: str) -> PrivateKey:
    return KEY_TYPES[check_key_type(name)]()


def key_type_of(key: object) -> str:
    """Describe a private or public key the way ``--key-type`` names it."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa-{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        curve = {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}
        return f"ecdsa-{curve.get(key.curve.name, key.curve.name)}"
    return type(key).__name__
