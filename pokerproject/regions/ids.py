"""Globally unique, time-ordered ids for regional rows.

Stories and rounds keep their id when a team moves to another shard and when a round is copied
to other regions, so their ids cannot come from one database's sequence. UUIDv7 (RFC 9562): 48
bits of Unix milliseconds, then random bits, so new rows land at the end of the index.
"""

import secrets
import time
import uuid


def uuid7() -> uuid.UUID:
    millis = time.time_ns() // 1_000_000
    rand_a = secrets.randbits(12)
    rand_b = secrets.randbits(62)
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)
