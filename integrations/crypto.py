"""Encryption at rest for integration secrets (Jira tokens, webhook signing secrets).

MultiFernet over ``INTEGRATIONS_ENCRYPTION_KEYS`` (newest first: it encrypts, every key
decrypts, so keys rotate by prepending). Without configured keys, one is derived from SECRET_KEY
so the embedded mode works out of the box; a deployment should set its own.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionFailed(ValueError):
    """The value was encrypted with a key that is no longer configured."""


def _fernet() -> MultiFernet:
    keys = list(settings.INTEGRATIONS_ENCRYPTION_KEYS)
    if not keys:
        digest = hashlib.sha256(b"integrations-at-rest:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionFailed("cannot decrypt with the configured keys") from exc
