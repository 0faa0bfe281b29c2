"""The typed node record: schema 1 files migrate with every field kept; bad fields fail in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sesam_tls.errors import StorageError
from sesam_tls.state import SCHEMA, NodeRecord, load_record, save_record

FIXTURE = Path(__file__).parent / "fixtures" / "certificate-schema1.json"


def _leaves(value, prefix=""):
    """Every (path, value) of a JSON document, nulls included."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _leaves(inner, f"{prefix}[{i}]")
    else:
        yield prefix, value


def test_schema1_fixture_migrates_with_every_field_kept(tmp_path) -> None:
    """A certificate.json written by the schema-1 code (83506c7) reads, writes and reads back whole."""
    old = json.loads(FIXTURE.read_text())
    assert old["schema"] == 1
    path = tmp_path / "certificate.json"
    shutil.copy(FIXTURE, path)
    record = load_record(path)
    assert isinstance(record, NodeRecord)
    save_record(path, record)
    written = json.loads(path.read_text())
    assert written["schema"] == SCHEMA == 2
    again = load_record(path)
    assert again == record
    new = dict(_leaves(written))
    for key, value in _leaves(old):
        if key == "schema":
            continue
        assert new.get(key, "missing") == value, key
    # the typed view says the same as the file
    assert record.provider == "acme"
    assert record.certificate.serial == old["certificate"]["serial"]
    assert record.renewal.ari is not None and record.renewal.ari.chosen == old["renewal"]["ari"]["chosen"]
    assert record.renewal.refusals == 1 and record.renewal.failures == 1
    assert record.provider_settings.http_address == ("127.0.0.1", "::1")
    assert record.history[0].version == old["history"][0]["version"]
    assert record.revoked is not None and record.revoked.reason == "superseded"
    assert record.hooks.deploy == "logger deployed"
    assert record.settings.container == "nginx"  # schema 1 knew the container only as where it deployed


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda m: m["renewal"].update(failures="three"), "renewal.failures"),
        (lambda m: m["renewal"]["ari"].update(chosen="soon"), "renewal.ari.chosen"),
        (lambda m: m["certificate"].update(not_after=12), "certificate.not_after"),
        (lambda m: m.update(history={}), "history"),
        (lambda m: m["deployment"].update(colour="blue"), "deployment.colour"),
        (lambda m: m.update(extra=1), "extra"),
        (lambda m: m["provider_settings"].update(http_port="80"), "provider_settings.http_port"),
        (lambda m: m.update(provider="carrier-pigeon"), "provider_settings.directory"),
        (lambda m: m.update(provider=7), "provider"),
        (lambda m: m["request"].update(names=["a", 1]), "request.names[1]"),
    ],
)
def test_wrongly_shaped_field_is_one_line_naming_it(tmp_path, edit, field) -> None:
    meta = json.loads(FIXTURE.read_text())
    edit(meta)
    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(meta))
    before = path.read_bytes()
    with pytest.raises(StorageError) as caught:
        load_record(path)
    message = str(caught.value)
    assert "\n" not in message and f"'{field}'" in message and str(path) in message
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path) -> None:
    meta = json.loads(FIXTURE.read_text())
    meta["schema"] = SCHEMA + 1 if isinstance(SCHEMA, int) else 3
    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(meta))
    with pytest.raises(StorageError, match="newer than this sesam-tls knows"):
        load_record(path)


def test_every_field_is_documented() -> None:
    """docs/state.md names every field of the record: adding one without saying what it means fails here."""
    import dataclasses

    from sesam_tls.state import record_classes

    doc = (Path(__file__).parent.parent / "docs" / "state.md").read_text()
    missing = [f"{cls.__name__}.{f.name}" for cls in record_classes() for f in dataclasses.fields(cls)
               if f"`{f.name}`" not in doc]
    assert not missing, f"docs/state.md does not describe {missing}"
