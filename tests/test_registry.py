"""The provider registry: one dict from a provider's name to its settings class; renew rebuilds through it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar, Optional

import pytest

from sesam_tls.api import issue
from sesam_tls.errors import StorageError
from sesam_tls.node import Node
from sesam_tls.options import DeployOptions
from sesam_tls.providers import registry
from sesam_tls.providers.base import CertRequest
from sesam_tls.providers.selfsigned import SelfSigned
from sesam_tls.renew import renew
from sesam_tls.state import load_record

from .helpers import make_root

FILES_ONLY = DeployOptions(restart=False)


def test_the_registry_names_every_provider_sesam_tls_ships() -> None:
    assert set(registry.PROVIDERS) == {"selfsigned", "acme", "import"}
    for name, cls in registry.PROVIDERS.items():
        assert cls.name == name
        assert cls.from_record(cls().to_record()) == cls()


class Stamped(SelfSigned):
    """A provider of a library caller: self-signed, with one setting of its own."""

    name = "stamped"
    built: ClassVar[list[str]] = []

    def __init__(self, stamp: str) -> None:
        super().__init__()
        self.stamp = stamp

    def settings(self) -> dict[str, str]:
        return {"stamp": self.stamp}


@dataclass(frozen=True)
class StampedSettings(registry._Settings):
    name: ClassVar[str] = "stamped"
    from_ca: ClassVar[bool] = False
    stamp: Optional[str] = None

    def build(self, node, record, *, dry_run=False):
        Stamped.built.append(str(self.stamp))
        return Stamped(str(self.stamp))


def test_adding_a_provider_is_one_entry_and_renew_rebuilds_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(registry.PROVIDERS, "stamped", StampedSettings)
    node = Node.from_settings(root=str(make_root(tmp_path)), env={})
    issue(CertRequest.build(["node.example.test"]), Stamped("blue"), node=node, options=FILES_ONLY)
    record = load_record(node.metadata_path)
    assert record.provider == "stamped" and record.provider_settings == StampedSettings(stamp="blue")

    result = renew(node, force=True, options=FILES_ONLY, now=dt.datetime.now(dt.timezone.utc))
    assert result.status == "renewed", result.message
    assert Stamped.built == ["blue"]
    assert load_record(node.metadata_path).provider_settings.stamp == "blue"


def test_an_unregistered_provider_is_recorded_by_name_and_not_renewed(tmp_path, monkeypatch) -> None:
    node = Node.from_settings(root=str(make_root(tmp_path)), env={})
    monkeypatch.setitem(registry.PROVIDERS, "stamped", StampedSettings)
    issue(CertRequest.build(["node.example.test"]), Stamped("red"), node=node, options=FILES_ONLY)
    monkeypatch.delitem(registry.PROVIDERS, "stamped")
    with pytest.raises(StorageError, match="'provider_settings.stamp'"):  # its settings are not known any more
        load_record(node.metadata_path)
