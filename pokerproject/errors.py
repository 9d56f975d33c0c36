"""The one base of every refusal a rule or a service makes.

A ``DomainError`` carries a stable ``code`` that is part of the protocol and the API (the socket
answers an ``error`` frame with it, the REST API a problem with it, the pages a message). Each
app defines its own errors next to the rules that raise them, as subclasses of this one; the
edges translate it without knowing which app raised it.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command broke a rule. ``code`` is stable and part of the protocol."""

    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)
