"""CAA (RFC 8659, with RFC 8657's ``validationmethods`` and ``accounturi``): may this CA issue?

A CA must refuse a name whose relevant CAA record set does not name it; that
refusal comes late (after the challenge) and reads as a generic error. ``check``
reads the records first and says which one forbids the CA, the account or the
challenge method. The decision is pure (:func:`judge`); the lookup is given in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

__all__ = ["Caa", "judge", "parse_value", "relevant", "SPECIAL_USE"]

#: RFC 6761/2606 names no public DNS serves: nothing to ask about them.
SPECIAL_USE = ("test", "example", "invalid", "localhost")


@dataclass(frozen=True)
class Caa:
    flags: int
    tag: str
    value: str

    def __str__(self) -> str:
        return f'{self.flags} {self.tag} "{self.value}"'


def parse_value(value: str) -> tuple[str, dict[str, str]]:
    """``"ca.example; key=value; ..."`` -> (issuer domain, parameters); an empty domain forbids every CA."""
    parts = [p.strip() for p in value.split(";")]
    domain = parts[0].lower()
    params: dict[str, str] = {}
    for part in parts[1:]:
        if "=" in part:
            key, _, val = part.partition("=")
            params[key.strip().lower()] = val.strip()
    return domain, params


def relevant(lookup: Callable[[str], Sequence[Caa]], name: str) -> tuple[str, list[Caa]]:
    """RFC 8659 section 3: the first non-empty CAA set at the name or a parent (for a wildcard, its base)."""
    labels = name.rstrip(".").removeprefix("*.").split(".")
    for i in range(len(labels)):
        owner = ".".join(labels[i:])
        found = list(lookup(owner))
        if found:
            return owner, found
    return "", []


def judge(records: Sequence[Caa], *, owner: str, identities: Sequence[str], method: str,
          account: Optional[str], wildcard: bool) -> tuple[bool, str]:
    """(allowed, the reason in one phrase). ``identities``: the CA's CAA names (its directory's
    ``caaIdentities``); empty when unknown, then only what the records allow is said."""
    known = {"issue", "issuewild", "iodef", "contactemail", "contactphone", "issuemail", "issuevmc"}
    for record in records:
        if record.flags & 128 and record.tag.lower() not in known:
            return False, f"CAA at {owner}: {record} is critical and unknown to CAs: none may issue"
    tag = "issue"
    if wildcard and any(r.tag.lower() == "issuewild" for r in records):
        tag = "issuewild"
    chosen = [r for r in records if r.tag.lower() == tag]
    if not chosen:
        return True, f"CAA at {owner} has no {tag} record: any CA may issue"
    names = {parse_value(r.value)[0] for r in chosen} - {""}
    if not names:
        return False, f"CAA at {owner} ({'; '.join(map(str, chosen))}) forbids every CA"
    ids = {i.lower() for i in identities}
    if not ids:
        return True, (f"CAA at {owner} allows only {', '.join(sorted(names))}: make sure that is this CA "
                      "(the CA names no caaIdentities)")
    mine = [r for r in chosen if parse_value(r.value)[0] in ids]
    if not mine:
        return False, (f"CAA at {owner} allows only {', '.join(sorted(names))}, not this CA "
                       f"({', '.join(sorted(ids))}): add {tag} \"{sorted(ids)[0]}\"")
    refusals = []
    for record in mine:
        _, params = parse_value(record.value)
        methods = [m.strip() for m in params.get("validationmethods", "").split(",") if m.strip()]
        if methods and method not in methods:
            refusals.append(f"{record} allows only {', '.join(methods)}, not {method}")
            continue
        uri = params.get("accounturi")
        if uri and account is None:
            return True, f"CAA at {owner}: {record} binds an account; this node has none yet for this CA"
        if uri and uri != account:
            refusals.append(f"{record} binds another account than this node's ({account})")
            continue
        return True, f"CAA at {owner} allows this CA ({record})"
    return False, f"CAA at {owner} forbids it: " + "; ".join(refusals)
