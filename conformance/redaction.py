"""The one redaction point: every credential, in every form a deployment could echo it in,
replaced by ``***`` in whatever the suite is about to write.

A deployment under test is not trusted to echo a key back verbatim. It may return it inside
a JSON string with ``\\u`` escapes, percent-encoded (either case), as HTML character
references, in base64 or base64url (at any alignment inside a longer string), reversed, or
in pieces spread over several headers. :class:`Redactor` knows those forms. It looks at
every run of characters that could spell a secret (the secrets' own characters and escapes
of them), decodes the escapes, and replaces the whole run when it holds
:data:`FRAGMENT` consecutive characters of a secret or of one of its derived forms.

Capture redacts early (so no model object holds a secret) and every writer redacts again
after its final serialisation, because serialising can undo an escape that hid a secret
from the first pass (see :mod:`conformance.output`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

SENSITIVE_HEADERS = frozenset({"x-api-key", "authorization", "cookie", "set-cookie", "proxy-authorization"})
REDACTED = "***"
# The shortest piece of a secret that is redacted on its own: long enough that ordinary text
# never holds one by chance, short enough that no useful part of a key survives.
FRAGMENT = 10
_ESCAPES = (r"\\u[0-9a-fA-F]{4}", r"%[0-9a-fA-F]{2}", r"&(?:amp;)?#(?:[xX][0-9a-fA-F]{1,6}|[0-9]{1,7});", r"\\/")
_ESCAPE = re.compile("|".join(f"({escape})" for escape in _ESCAPES))
_MAY_ESCAPE = re.compile(r"[\\%&]")  # the characters every escape starts with
# Past this many distinct runs the memory of judged runs starts again; longer runs are not kept.
JUDGED_RUNS_KEPT, JUDGED_RUN_LENGTH = 8192, 256


def base64_cores(secret: bytes) -> set[str]:
    """The parts of base64 and base64url text that encode ``secret`` whatever bytes surround
    it: one core per alignment, trimmed of the characters that mix in neighbouring bytes."""
    cores: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret).decode("ascii").rstrip("=")
        start = -(-shift * 4 // 3)
        end = len(encoded) - (1 if (shift + len(secret)) % 3 else 0)
        core = encoded[start:end]
        if core:
            cores |= {core, core.translate(str.maketrans("+/", "-_"))}
    return cores


def derived_forms(secret: str) -> set[str]:
    """What a secret looks like once its escapes are decoded: itself, and when it is long
    enough to be told apart from ordinary text, reversed and in base64."""
    stem = secret.strip()
    if len(stem) < FRAGMENT:
        return {stem} if stem else set()
    return {stem, stem[::-1], *(core for core in base64_cores(stem.encode("utf-8")) if len(core) >= FRAGMENT)}


class Redactor:
    """Replaces every occurrence of a secret, and of its derived forms, with ``***``.

    Secrets are compared with surrounding whitespace stripped: a key pasted with a trailing
    newline is still that key.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = {form for secret in secrets if secret for form in derived_forms(secret)}
        self._windows: dict[int, frozenset[str]] = {}
        for form in forms:
            width = min(FRAGMENT, len(form))
            pieces = {form[start:start + width] for start in range(len(form) - width + 1)}
            self._windows[width] = self._windows.get(width, frozenset()) | pieces
        self._runs: re.Pattern[str] | None = None
        # Runs already judged: pages repeat the same member names, ids and dates thousands of times.
        self._judged: dict[str, bool] = {}
        if forms:
            alphabet = "".join(sorted({re.escape(char) for form in forms for char in form}))
            # The secrets' characters first (most of any text), then the escapes of any character;
            # possessive, since a run that ends never needs to give a character back.
            unit = "|".join((f"[{alphabet}]", *_ESCAPES))
            self._runs = re.compile(f"(?:{unit}){{{min(self._windows)},}}+")

    def __bool__(self) -> bool:
        return self._runs is not None

    def text(self, text: str) -> str:
        if self._runs is None or not text:
            return text
        return self._runs.sub(self._replacement, text)

    def data(self, data: bytes) -> bytes:
        """Bytes about to be written, redacted byte for byte (credentials are visible ASCII:
        :func:`conformance.config.validate` refuses any other)."""
        if self._runs is None:
            return data
        return self.text(data.decode("latin-1")).encode("latin-1")

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [
            (self.text(name), REDACTED if name.lower() in SENSITIVE_HEADERS else self.text(value))
            for name, value in headers
        ]

    def _replacement(self, match: re.Match[str]) -> str:
        run = match.group(0)
        known = self._judged.get(run)
        if known is None:
            known = self._holds_a_secret(run) or bool(_MAY_ESCAPE.search(run)) and self._holds_a_secret(_unescape(run))
            if len(run) <= JUDGED_RUN_LENGTH:
                if len(self._judged) >= JUDGED_RUNS_KEPT:
                    self._judged.clear()
                self._judged[run] = known
        return REDACTED if known else run

    def _holds_a_secret(self, plain: str) -> bool:
        return any(plain[start:start + width] in pieces
                   for width, pieces in self._windows.items()
                   for start in range(len(plain) - width + 1))


def _unescape(run: str) -> str:
    """``run`` with every escape replaced by the character it stands for."""
    return _ESCAPE.sub(_character, run)


def _character(match: re.Match[str]) -> str:
    escape = match.group(0)
    if escape == "\\/":
        return "/"
    if escape.startswith("\\u"):
        code = int(escape[2:], 16)
    elif escape.startswith("%"):
        code = int(escape[1:], 16)
    else:
        number = escape.rstrip(";").rsplit("#", 1)[1]
        code = int(number[1:], 16) if number[:1] in "xX" else int(number)
    return chr(code) if code < 0x110000 else "\ufffd"
