"""Text the API and the admin accept: no NUL or other control characters, and no line break in one-line fields.

PostgreSQL refuses NUL in text (a 500 if it reaches the database), a control character in a name shows up
garbled in every list and export, and a line break in a name that ends up in an e-mail header (a programme's
name is the subject of its notices) makes every e-mail of that programme fail. Model fields carry these
validators, so the API (DRF copies model validators into its serializer fields) and the admin's forms refuse
the same input with a message naming the field.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# Unicode category Cc: C0 (U+0000–U+001F), DEL and C1 (U+0080–U+009F); lone surrogates cannot be stored either.
_CONTROL = "\x00-\x1f\x7f-\x9f\ud800-\udfff"
_LINE_BREAKS_ALLOWED = "\t\n\r"
# One-line text also refuses the Unicode line and paragraph separators (they fold e-mail headers too).
SINGLE_LINE_FORBIDDEN = re.compile(f"[{_CONTROL}\u2028\u2029]")
FREE_TEXT_FORBIDDEN = re.compile(f"[{_CONTROL}]")


def forbidden_character(value: str, *, single_line: bool = True) -> str | None:
    """The first character `value` may not contain, or None when it is clean."""
    pattern = SINGLE_LINE_FORBIDDEN if single_line else FREE_TEXT_FORBIDDEN
    for match in pattern.finditer(value):
        if single_line or match.group() not in _LINE_BREAKS_ALLOWED:
            return match.group()
    return None


def describe(character: str) -> str:
    """`U+000A (line break)` — how the error message names a refused character."""
    names = {"\x00": "NUL", "\n": "line feed", "\r": "carriage return", "\t": "tab"}
    label = names.get(character, "control character")
    return f"U+{ord(character):04X} ({label})"


@deconstructible(path="clinrec.validators.ProhibitControlCharacters")
class ProhibitControlCharacters:
    """Refuses NUL and other control characters; `single_line` refuses CR, LF and tab too.

    Free text (descriptions, reports, reasons) keeps its line breaks and tabs.
    """

    code = "control_characters"

    def __init__(self, *, single_line: bool = True):
        self.single_line = single_line

    def __call__(self, value) -> None:
        if not isinstance(value, str):
            return
        character = forbidden_character(value, single_line=self.single_line)
        if character is not None:
            kind = "a one-line field" if self.single_line else "text"
            raise ValidationError(
                "Control characters are not allowed in %(kind)s: found %(character)s.",
                code=self.code,
                params={"kind": kind, "character": describe(character)},
            )

    def __eq__(self, other) -> bool:
        return isinstance(other, ProhibitControlCharacters) and other.single_line == self.single_line

    def __hash__(self) -> int:
        return hash((type(self), self.single_line))


single_line_text = ProhibitControlCharacters(single_line=True)
free_text = ProhibitControlCharacters(single_line=False)


def printable(value: str) -> str:
    """The text with every non-printing character escaped (`\\u001e`), safe to echo back in an error message."""
    return "".join(character if character.isprintable() else f"\\u{ord(character):04x}" for character in value)
