"""The 8-byte BLAKE2b digest of an id: the one hash dedup windows and seen lists store."""

from __future__ import annotations

import hashlib

DIGEST_SIZE = 8


def digest8(text: str) -> bytes:
    """8-byte BLAKE2b digest of ``text`` encoded as UTF-8."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=DIGEST_SIZE).digest()


def digest8_int(text: str) -> int:
    """``digest8`` read as a little-endian unsigned 64-bit integer."""
    return int.from_bytes(digest8(text), "little")
