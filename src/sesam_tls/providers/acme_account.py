"""The ACME account: one per directory URL, kept in the state folder, reused by every issuance.

::

    <state_dir>/accounts/<sha256 of the directory URL>/
        key.pem        ECDSA P-256 account key, 0600 from creation
        account.json   schema, directory, account URL, contact, key thumbprint (no secret)

The account URL is used without asking the CA first (one round trip
saved); when the CA answers that the account is unknown or deactivated,
the folder is set aside and a new account is registered, with a warning.
Key rollover follows RFC 8555 section 7.3.5: the new key is written beside
the old one, the CA is told, and only then does it replace the old one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import IssuanceError, StorageError, UsageError
from ..fsutil import atomic_write, describe_oserror, fsync_dir, write_new
from .acme_net import Connection, wire_errors

__all__ = ["AccountInfo", "AccountStore", "Eab", "account_info", "check_registration", "deactivate", "ensure_account", "jwk_for", "reregister", "rollover"]

log = logging.getLogger("sesam_tls")

SCHEMA = 1
KEY_NAME = "key.pem"
NEXT_KEY_NAME = "key.next.pem"
META_NAME = "account.json"


@dataclass(frozen=True)
class Eab:
    """External Account Binding: the key id and the base64url HMAC key the CA handed out."""

    kid: str
    hmac_key: str

    def __repr__(self) -> str:  # the HMAC key never reaches a log or a traceback
        return f"Eab(kid={self.kid!r}, hmac_key=<hidden>)"


@dataclass(frozen=True)
class AccountInfo:
    """The node's account at one CA: what is stored (URL, key, dates) and what the CA says (status, contact).

    ``status`` is the CA's word (``valid``, ``deactivated``, ``revoked``), or
    ``not usable: <the CA's detail>`` when the CA no longer accepts the
    account, so that ``show`` still tells what is stored.
    """

    directory: str
    uri: str
    status: str
    contact: tuple[str, ...]
    created_at: Optional[str]
    key_type: Optional[str]
    key_thumbprint: str
    key_file: Path
    rolled_over_at: Optional[str]

    def to_json(self) -> dict[str, Any]:
        """What ``sesam-tls account show --json`` prints."""
        return {
            "directory": self.directory,
            "uri": self.uri,
            "status": self.status,
            "contact": list(self.contact),
            "created_at": self.created_at,
            "key_type": self.key_type,
            "key_thumbprint": self.key_thumbprint,
            "key_file": str(self.key_file),
            "rolled_over_at": self.rolled_over_at,
        }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class AccountStore:
    state_dir: Path
    directory: str

    @property
    def folder(self) -> Path:
        return Path(self.state_dir) / "accounts" / hashlib.sha256(self.directory.encode()).hexdigest()

    @property
    def key_path(self) -> Path:
        return self.folder / KEY_NAME

    @property
    def meta_path(self) -> Path:
        return self.folder / META_NAME

    def _ensure(self) -> None:
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # accounts/: keys only
            self.folder.mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StorageError(f"cannot create account folder {self.folder}: {describe_oserror(exc)}") from None

    def load_key(self, path: Optional[Path] = None) -> Any:
        from cryptography.hazmat.primitives import serialization

        path = path or self.key_path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read account key {path}: {describe_oserror(exc)}") from None
        try:
            return serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise StorageError(f"account key {path} is not an unencrypted PEM key; move it aside") from None

    def new_key(self, path: Optional[Path] = None) -> Any:
        """A fresh ECDSA P-256 key, written with mode 0600 before anything else sees it."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        self._ensure()
        path = path or self.key_path
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            write_new(path, pem, 0o600)
            fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot write account key {path}: {describe_oserror(exc)}") from None
        return key

    def load_meta(self) -> Optional[dict[str, Any]]:
        try:
            data = json.loads(self.meta_path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {self.meta_path} ({type(exc).__name__}); move it aside") from None
        if not isinstance(data, dict) or not isinstance(data.get("uri"), str):
            raise StorageError(f"{self.meta_path} is not a sesam-tls account file; move it aside")
        if int(data.get("schema", 0)) > SCHEMA:
            raise StorageError(f"{self.meta_path} has schema {data['schema']}, newer than this sesam-tls knows")
        return data

    def save_meta(self, meta: dict[str, Any]) -> None:
        self._ensure()
        body = json.dumps({**meta, "schema": SCHEMA}, indent=2, sort_keys=True) + "\n"
        atomic_write(self.meta_path, body.encode(), 0o644, what=f"account file {self.meta_path}")

    def retire(self, why: str) -> Path:
        """Set the folder aside (never delete a key): ``<hash>.<why>-<time>-<random>``."""
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        target = self.folder.with_name(f"{self.folder.name}.{why}-{stamp}-{secrets.token_hex(3)}")
        try:
            os.replace(self.folder, target)
        except OSError as exc:
            raise StorageError(f"cannot move {self.folder} aside: {describe_oserror(exc)}") from None
        return target


def jwk_for(key: Any) -> Any:
    import josepy as jose

    return jose.JWKEC(key=key) if hasattr(key, "curve") else jose.JWKRSA(key=key)


def thumbprint(key: Any) -> str:
    import josepy as jose

    return jose.b64encode(jwk_for(key).thumbprint()).decode()


def ensure_account(
    conn: Connection,
    store: AccountStore,
    *,
    email: Optional[str] = None,
    agree_tos: bool = False,
    eab: Optional[Eab] = None,
) -> str:
    """Make ``conn`` sign as this node's account for its directory, registering one if needed.

    Returns the account URL. No network call when the account is known.
    """
    meta = store.load_meta()
    key = store.load_key()
    if meta is not None and key is not None:
        conn.use_key(jwk_for(key), meta["uri"])
        log.info("using ACME account %s", meta["uri"])
        return str(meta["uri"])
    return _register(conn, store, key, email=email, agree_tos=agree_tos, eab=eab, agreed_terms=None)


def reregister(
    conn: Connection,
    store: AccountStore,
    why: str,
    *,
    email: Optional[str] = None,
    agree_tos: bool = False,
    eab: Optional[Eab] = None,
) -> str:
    """The CA no longer knows the stored account: set it aside and register a new one."""
    old = store.load_meta() or {}
    moved = store.retire("deactivated" if "deactivated" in why else "lost")
    log.warning("the CA does not accept ACME account %s (%s); moved it to %s and registering a new one",
                old.get("uri"), why, moved)
    return _register(
        conn, store, None, email=email or _email_of(old), agree_tos=agree_tos, eab=eab,
        agreed_terms=old.get("terms_of_service_agreed"),
    )


def _email_of(meta: dict[str, Any]) -> Optional[str]:
    mails = [c[len("mailto:"):] for c in meta.get("contact") or [] if c.startswith("mailto:")]
    return ",".join(mails) or None


def check_registration(
    url: str,
    meta: Any,
    *,
    agree_tos: bool = False,
    eab: Optional[Eab] = None,
    agreed_terms: Optional[str] = None,
) -> None:
    """Raise UsageError when registering an account at ``url`` (its directory's ``meta``) would be
    refused for want of what only the operator can give: agreement to the CA's terms of service
    (``agreed_terms``: the terms an earlier account of this node agreed to), or External Account
    Binding. Used by the registration itself and by ``check``, which orders nothing."""
    terms = getattr(meta, "terms_of_service", None)
    if terms and not agree_tos and agreed_terms != terms:
        raise UsageError(
            f"registering an account at {url} needs `agree_tos`, your agreement to the CA's terms of service "
            f"({terms}): add `agree_tos`"
        )
    if getattr(meta, "external_account_required", False) and eab is None:
        raise UsageError(
            f"{url} requires External Account Binding: add `eab_kid` KID and "
            "`eab_hmac_file` FILE (or `eab_hmac_env` VAR) with the values your CA gave you"
        )


def _register(
    conn: Connection,
    store: AccountStore,
    key: Any,
    *,
    email: Optional[str],
    agree_tos: bool,
    eab: Optional[Eab],
    agreed_terms: Optional[str],
) -> str:
    from acme import errors as acme_errors
    from acme import messages

    directory = conn.directory()
    check_registration(conn.url, directory.meta, agree_tos=agree_tos, eab=eab, agreed_terms=agreed_terms)
    terms = getattr(directory.meta, "terms_of_service", None)
    if key is None:
        key = store.new_key()
    jwk = jwk_for(key)
    conn.use_key(jwk)
    binding = None
    if eab is not None:
        try:
            binding = messages.ExternalAccountBinding.from_data(
                account_public_key=jwk.public_key(), kid=eab.kid, hmac_key=eab.hmac_key, directory=directory
            )
        except (ValueError, TypeError) as exc:
            raise UsageError(f"the EAB HMAC key for `eab_kid` {eab.kid!r} is not base64url ({exc})") from None
    registration = messages.NewRegistration.from_data(
        email=email, terms_of_service_agreed=True if terms else None, external_account_binding=binding
    )
    log.info("registering an ACME account at %s", conn.url)
    with wire_errors(conn, "registering the ACME account"):
        try:
            uri = conn.client().new_account(registration).uri
        except acme_errors.ConflictError as exc:  # the key already has an account: reuse it
            uri = exc.location
    store.save_meta({
        "directory": conn.url,
        "uri": uri,
        "created_at": _now(),
        "contact": [f"mailto:{m}" for m in email.split(",")] if email else [],
        "terms_of_service_agreed": terms,
        "external_account_binding": eab is not None,
        "key_type": "ecdsa-p256",
        "key_thumbprint": thumbprint(key),
    })
    conn.set_account(uri)
    log.info("registered ACME account %s", uri)
    return str(uri)


def _loaded(conn: Connection, store: AccountStore) -> tuple[dict[str, Any], Any]:
    meta, key = store.load_meta(), store.load_key()
    if meta is None or key is None:
        raise UsageError(f"no ACME account for {store.directory} in {store.folder.parent}; `sesam-tls issue` creates one")
    conn.use_key(jwk_for(key), meta["uri"])
    return meta, key


def account_info(conn: Connection, store: AccountStore) -> AccountInfo:
    """The stored account and what the CA says about it (status, contact)."""
    from acme import messages

    meta, key = _loaded(conn, store)
    regr = messages.RegistrationResource(uri=meta["uri"], body=messages.Registration())
    with wire_errors(conn, "asking the CA about the account"):
        try:
            body = conn.client().query_registration(regr).body
            status, contact = str(body.status or "valid"), list(body.contact or ())
        except messages.Error as problem:
            if problem.code not in ("accountDoesNotExist", "unauthorized"):
                raise
            status, contact = f"not usable: {problem.detail}", list(meta.get("contact") or [])
    return AccountInfo(
        directory=store.directory,
        uri=str(meta["uri"]),
        status=status,
        contact=tuple(str(c) for c in contact),
        created_at=meta.get("created_at"),
        key_type=meta.get("key_type"),
        key_thumbprint=thumbprint(key),
        key_file=store.key_path,
        rolled_over_at=meta.get("rolled_over_at"),
    )


def rollover(conn: Connection, store: AccountStore) -> str:
    """Replace the account key (RFC 8555 7.3.5); returns the new key's thumbprint."""
    import josepy as jose
    from acme import jws

    meta, old_key = _loaded(conn, store)
    directory = conn.directory()
    try:
        url = directory["keyChange"]
    except KeyError:
        raise IssuanceError(f"{conn.url} does not offer account key rollover (no keyChange)") from None
    next_path = store.folder / NEXT_KEY_NAME
    if next_path.exists():
        next_path.unlink()  # a rollover interrupted before the CA answered
    new_key = store.new_key(next_path)
    new_jwk = jwk_for(new_key)
    inner_payload = json.dumps({"account": meta["uri"], "oldKey": jwk_for(old_key).public_key().to_partial_json()})
    inner = jws.JWS.sign(
        inner_payload.encode(), key=new_jwk, alg=jose.ES256, nonce=None, url=url, kid=None
    )
    log.info("rolling over the key of ACME account %s", meta["uri"])
    try:
        with wire_errors(conn, "account key rollover"):
            conn.post(url, inner)
    except BaseException:
        next_path.unlink()
        raise
    try:
        os.replace(next_path, store.key_path)
        fsync_dir(store.folder)
    except OSError as exc:
        raise StorageError(
            f"the CA took the new account key but {store.key_path} could not be replaced "
            f"({describe_oserror(exc)}): move {next_path} to {store.key_path} by hand"
        ) from None
    new_print = thumbprint(new_key)
    store.save_meta({**meta, "key_thumbprint": new_print, "rolled_over_at": _now()})
    conn.use_key(new_jwk, meta["uri"])
    log.info("account key replaced; new key thumbprint %s", new_print)
    return new_print


def deactivate(conn: Connection, store: AccountStore) -> Path:
    """Deactivate the account at the CA (irreversible) and set its folder aside."""
    from acme import messages

    meta, _ = _loaded(conn, store)
    regr = messages.RegistrationResource(uri=meta["uri"], body=messages.Registration())
    log.info("deactivating ACME account %s", meta["uri"])
    with wire_errors(conn, "deactivating the account"):
        conn.client().deactivate_registration(regr)
    return store.retire("deactivated")
