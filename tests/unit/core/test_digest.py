from __future__ import annotations

import hashlib

from stream.core.board import item_digest
from stream.core.dedup import hash_id
from stream.core.digest import digest8, digest8_int


def test_digest_is_eight_bytes_of_blake2b() -> None:
    assert digest8("item-1") == hashlib.blake2b(b"item-1", digest_size=8).digest()
    assert digest8_int("e1") == int.from_bytes(digest8("e1"), "little")


def test_dedup_and_board_share_the_digest() -> None:
    assert hash_id("évent") == digest8_int("évent")
    assert item_digest("item-1") == digest8("item-1")
