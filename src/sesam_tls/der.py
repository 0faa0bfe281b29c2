"""The iteration counts a PKCS#12 file or an encrypted PKCS#8 key asks for, read before any work (pure).

cryptography (OpenSSL) runs whatever key derivation a file asks for, and a
1.4 KB PKCS#12 file whose MAC asks for 2^31-1 iterations keeps it busy for
many minutes, deaf to Ctrl-C. So :mod:`sesam_tls.pemio` first reads the
counts itself with this small walker and refuses a file that asks for too
many, before the file reaches cryptography.

The walker reads BER (DER, and the indefinite lengths some exporters still
write), is bounded in depth and in the number of elements, and opens the
OCTET STRINGs that hold DER (PKCS#12's authSafe and SafeContents). It finds:

- the MAC's ``iterations`` (PFX -> MacData);
- every PKCS#12 and PKCS#5 v1 PBE ``AlgorithmIdentifier``: its parameters
  are ``SEQUENCE { salt, iterations }`` (shrouded key bags, encrypted
  content infos);
- every PBKDF2 ``AlgorithmIdentifier`` (PBES2's key derivation, PBMAC1):
  ``SEQUENCE { salt, iterationCount, ... }``.

What is encrypted cannot be read before it is decrypted: a shrouded key bag
*inside* an encrypted SafeContents is seen by OpenSSL only, after the outer
(bounded) decryption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["DerError", "iteration_counts"]

#: Deeper nesting or more elements than any real key file has: refused, not walked.
MAX_DEPTH = 40
MAX_ELEMENTS = 20_000

_SEQUENCE = 0x30
_INTEGER = 0x02
_OCTET_STRING = 0x04
_OCTET_STRING_CONSTRUCTED = 0x24
_OID = 0x06

# OIDs, as the bytes of their DER content.
_PKCS12_PBE = bytes.fromhex("2a864886f70d010c01")  # 1.2.840.113549.1.12.1.{1..6}
_PKCS5_PBES1 = bytes.fromhex("2a864886f70d0105")  # 1.2.840.113549.1.5.{1,3,4,6,10,11}
_PBES1_ARCS = {1, 3, 4, 6, 10, 11}
_PBKDF2 = bytes.fromhex("2a864886f70d01050c")  # 1.2.840.113549.1.5.12


class DerError(ValueError):
    """The bytes are not BER, or more nested or larger than any key file."""


@dataclass
class _Node:
    tag: int
    content: bytes
    children: Optional[list["_Node"]]  # None for a primitive element


class _Walker:
    def __init__(self) -> None:
        self.elements = 0

    def parse(self, data: bytes, depth: int, *, allow_trailing: bool = False) -> list[_Node]:
        """Every element in ``data``; DerError unless they fill it (or ``allow_trailing``)."""
        nodes: list[_Node] = []
        pos = 0
        while pos < len(data):
            if allow_trailing and nodes:
                break
            node, pos = self._element(data, pos, depth)
            nodes.append(node)
        return nodes

    def _element(self, data: bytes, pos: int, depth: int) -> tuple[_Node, int]:
        if depth > MAX_DEPTH:
            raise DerError(f"nested more than {MAX_DEPTH} levels deep")
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise DerError(f"more than {MAX_ELEMENTS} elements")
        if pos + 2 > len(data):
            raise DerError("truncated")
        tag = data[pos]
        pos += 1
        if tag & 0x1F == 0x1F:  # high tag number: skip its continuation bytes
            for _ in range(4):
                if pos >= len(data):
                    raise DerError("truncated")
                pos += 1
                if not data[pos - 1] & 0x80:
                    break
            else:
                raise DerError("tag number too large")
        if pos >= len(data):
            raise DerError("truncated")
        first = data[pos]
        pos += 1
        constructed = bool(tag & 0x20)
        if first == 0x80:  # indefinite length: children up to the end-of-contents octets
            if not constructed:
                raise DerError("indefinite length on a primitive element")
            children: list[_Node] = []
            while True:
                if data[pos : pos + 2] == b"\x00\x00":
                    return _Node(tag, b"", children), pos + 2
                if pos >= len(data):
                    raise DerError("truncated")
                child, pos = self._element(data, pos, depth + 1)
                children.append(child)
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count > 4 or pos + count > len(data):
                raise DerError("bad length")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        end = pos + length
        if end > len(data):
            raise DerError("truncated")
        content = data[pos:end]
        if constructed:
            return _Node(tag, content, self.parse(content, depth + 1)), end
        return _Node(tag, content, None), end

    def encapsulated(self, node: _Node, depth: int) -> list[_Node]:
        """The DER an OCTET STRING holds, or [] when it holds something else (ciphertext)."""
        if node.tag == _OCTET_STRING_CONSTRUCTED and node.children is not None:
            content = b"".join(c.content for c in node.children if c.tag == _OCTET_STRING)
        else:
            content = node.content
        if not content.startswith(bytes([_SEQUENCE])):
            return []
        mark = self.elements
        try:
            return self.parse(content, depth + 1)
        except DerError:
            if self.elements > MAX_ELEMENTS:
                raise
            self.elements = mark  # ciphertext that looked like a SEQUENCE for a few bytes
            return []


def _integer(node: _Node) -> Optional[int]:
    if node.tag != _INTEGER or node.children is not None or not node.content:
        return None
    if len(node.content) > 9:
        return 1 << 72  # more than any limit; the exact value does not matter
    return int.from_bytes(node.content, "big", signed=True)


def _pbe_count(oid: bytes, params: _Node) -> Optional[tuple[str, int]]:
    kids = params.children
    if params.tag != _SEQUENCE or not kids or len(kids) < 2:
        return None
    count = _integer(kids[1])
    if count is None:
        return None
    if oid == _PBKDF2:
        return "key derivation (PBKDF2)", count
    if oid.startswith(_PKCS12_PBE) and len(oid) == len(_PKCS12_PBE) + 1:
        return "key derivation (PKCS#12 PBE)", count
    if oid.startswith(_PKCS5_PBES1) and len(oid) == len(_PKCS5_PBES1) + 1 and oid[-1] in _PBES1_ARCS:
        return "key derivation (PKCS#5 PBE)", count
    return None


def _visit(walker: _Walker, node: _Node, depth: int, found: list[tuple[str, int]]) -> None:
    kids = node.children
    if kids is None:
        if node.tag == _OCTET_STRING:
            for child in walker.encapsulated(node, depth):
                _visit(walker, child, depth + 1, found)
        return
    if node.tag == _OCTET_STRING_CONSTRUCTED:
        for child in walker.encapsulated(node, depth):
            _visit(walker, child, depth + 1, found)
        return
    if node.tag == _SEQUENCE and len(kids) >= 2 and kids[0].tag == _OID:
        hit = _pbe_count(kids[0].content, kids[1])
        if hit is not None:
            found.append(hit)
    for child in kids:
        _visit(walker, child, depth + 1, found)


def iteration_counts(data: bytes, *, pkcs12: bool = False) -> list[tuple[str, int]]:
    """(what, count) for each iteration count in ``data``, in file order; DerError when unreadable.

    ``pkcs12``: ``data`` is a PFX, whose MacData (the third element) is read too.
    """
    walker = _Walker()
    top = walker.parse(data, 0, allow_trailing=True)
    found: list[tuple[str, int]] = []
    for node in top:
        _visit(walker, node, 0, found)
    if pkcs12 and top and top[0].children is not None and len(top[0].children) >= 3:
        mac = top[0].children[2]
        if mac.tag == _SEQUENCE and mac.children and len(mac.children) >= 3:
            count = _integer(mac.children[2])
            if count is not None:
                found.append(("MAC", count))
    return found
