"""Text for the terminal: untrusted values shown, never obeyed.

A value that came from outside the suite (a certification bundle, a deployment's response, a
file) can hold characters a terminal acts on instead of showing: ESC starts a sequence that
moves the cursor, erases lines or sets the window title; CR returns to the start of the line
and lets later text overwrite earlier text; bidirectional overrides reorder what follows. Such
a value can redraw the screen, for instance to print a fake verdict over the real one.

:func:`visible` turns every such character into a visible escape (``\\x1b``, ``\\u202e``), so a
value is printed as the characters it holds, on one line. Apply it to each untrusted value (or
to a whole line built from fixed words and untrusted values: the fixed words pass unchanged).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["console_safe", "visible"]

# Unicode categories a terminal may act on, or that change how the rest of the line reads:
# Cc controls (C0 including TAB/LF/CR/ESC/BEL, DEL, C1 including CSI U+009B), Cf format
# characters (bidi embeddings, overrides and isolates U+202A-U+202E and U+2066-U+2069, marks
# U+200E/U+200F/U+061C, zero-width characters), Zl/Zp line and paragraph separators (some
# terminals break the line), and Cs lone surrogates (which cannot be encoded for output).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_WITHOUT_KEPT = str.maketrans("", "", "\n\t")


def _escape(character: str) -> str:
    if character in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[character]
    code = ord(character)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _is_noncharacter(code: int) -> bool:
    """U+FDD0-U+FDEF and the last two code points of every plane (U+FFFE, U+FFFF, ...): never
    text, and XML 1.0 forbids U+FFFE/U+FFFF."""
    return 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE


def _is_invisible(character: str) -> bool:
    return unicodedata.category(character) in _INVISIBLE_CATEGORIES or _is_noncharacter(ord(character))


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control, format and separator character shown as an escape.

    The result holds no character a terminal acts on (ESC, CR, LF, BEL, DEL, C1 controls,
    bidi overrides and isolates, line separators, lone surrogates), so it prints as one line
    of exactly the characters it shows. Printable text, including non-ASCII letters and
    backslashes, passes unchanged; the mapping is for display and is not meant to be reversed.
    A multi-line message may keep its newlines and tabs with ``keep_newlines``.

    >>> visible("ok\\x1b[2K\\rVERIFIED\\u202e")
    'ok\\\\x1b[2K\\\\rVERIFIED\\\\u202e'
    """
    if text.isprintable():  # the common case: nothing to do (isprintable is False for all of the above)
        return text
    if keep_newlines and text.translate(_WITHOUT_KEPT).isprintable():  # a multi-line body: the same, fast
        return text
    kept = "\n\t" if keep_newlines else ""
    return "".join(_escape(c) if _is_invisible(c) and c not in kept else c for c in text)


# ESC [ parameters m: a colour or style change (Select Graphic Rendition), which moves nothing.
_SGR = re.compile(r"\x1b\[[0-9;]{0,32}m")


def console_safe(text: str, *, interactive: bool = False) -> str:
    """What a console stream writes: lines and tabs kept, every other control character made
    visible. On an interactive terminal colour sequences are kept, and so is a carriage
    return (pytest redraws its "collecting" line with one); in a log both are shown."""
    if not interactive:
        return visible(text, keep_newlines=True)
    parts = []
    position = 0
    for match in _SGR.finditer(text):
        parts.append(_interactive_text(text[position:match.start()]))
        parts.append(match.group(0))
        position = match.end()
    parts.append(_interactive_text(text[position:]))
    return "".join(parts)


def _interactive_text(text: str) -> str:
    return "\r".join(visible(line, keep_newlines=True) for line in text.split("\r"))
