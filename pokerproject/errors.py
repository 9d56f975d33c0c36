"""The one base of every refusal a rule or a service makes.

A ``DomainError`` carries a stable ``code`` that is part of the protocol and the API (the socket
answers an ``error`` frame with it, the REST API a problem with it, the pages a message). Each
app defines its own errors next to the rules that raise them, as subclasses of this one; the
edges translate it without knowing which app raised it.

The message is English source text with ``%(name)s`` placeholders, marked with ``gettext_noop``
so that `make messages` puts it in the catalogue; ``message`` translates it into the active
language when an edge shows it. The rules that raise these errors import no Django, so the
translation function is handed in once at start-up (``use_translation``) instead of imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def gettext_noop(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it (Django's name, so that
    makemessages finds it): the error translates it when it is shown."""
    return message


class Text(str):
    """A parameter that is itself a catalogue message (a role, an action): it is translated
    along with the message, where a user's own text (a name, a card) is shown as it is."""

    __slots__ = ()


def _untranslated(message: str) -> str:
    return message


_translate: Callable[[str], str] = _untranslated


def translated(message: str) -> str:
    """``message`` (marked with gettext_noop) in the active language, for the pure modules."""
    return _translate(message)


def use_translation(translate: Callable[[str], str]) -> None:
    """Translate every error's message with ``translate`` (Django's gettext, set at start-up)."""
    global _translate  # the one seam between the pure rules and Django
    _translate = translate


class DomainError(Exception):
    """A command broke a rule. ``code`` is stable and part of the protocol."""

    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        self.template = message
        self.params = dict(params or {})
        # str(error) stays the English text: logs and the API's stable wording for machines.
        super().__init__(self._render(_untranslated))
        if code is not None:
            self.code = code

    def _render(self, translate: Callable[[str], str]) -> str:
        text = translate(self.template)
        if not self.params:
            return text
        return text % {
            name: translate(value) if isinstance(value, Text) else value
            for name, value in self.params.items()
        }

    @property
    def message(self) -> str:
        """The message in the active language (the code is the same in every language)."""
        return self._render(_translate)
