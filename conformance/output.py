"""Every byte a run writes goes out through here, redacted after its final serialisation.

Files (results.json, junit.xml, summaries, the bundle's entries) are written with
:func:`write_text` / :func:`write_bytes`; files other writers produced in the report folder
(pytest-html's report.html) are redacted in place by :func:`sweep` before the run ends; the
console goes through :class:`ConsoleStream`, which also makes control characters visible.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from conformance.redaction import Redactor
from conformance.terminal import console_safe

# A file larger than this under the report folder is not one the suite wrote; it is left alone.
SWEEP_FILE_CAP = 64 * 1024 * 1024


def write_text(path: Path, text: str, redactor: Redactor) -> Path:
    return write_bytes(path, text.encode("utf-8"), redactor)


def append_text(path: Path, text: str, redactor: Redactor) -> Path:
    """Append ``text`` redacted to a file others write too (``$GITHUB_STEP_SUMMARY``)."""
    with open(path, "ab") as handle:
        handle.write(redactor.data(text.encode("utf-8")))
    return path


def write_bytes(path: Path, data: bytes, redactor: Redactor) -> Path:
    """Write ``data`` redacted, through a temporary file, so a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(redactor.data(data))
    os.replace(partial, path)
    return path


def sweep(folder: Path, redactor: Redactor) -> None:
    """Redact every file under ``folder`` in place (what other writers left there)."""
    if not redactor or not folder.is_dir():
        return
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= SWEEP_FILE_CAP:
            data = path.read_bytes()
            redacted = redactor.data(data)
            if redacted != data:
                write_bytes(path, redacted, redactor)


def check_writable(folder: Path) -> str | None:
    """Why reports cannot be written to ``folder``, or None when they can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".conformance-write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        return error.strerror or str(error)
    return None


class ConsoleStream(io.TextIOBase):
    """A text stream that redacts and neutralises what it writes before the real console sees it.

    It holds text back until a line ends (or a flush finds no secret's beginning pending), so
    a secret split over two ``write`` calls is still redacted whole.
    """

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        super().__init__()
        self.stream = stream
        self.redactor = redactor
        self._pending = ""
        self._interactive = _isatty(stream)

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            complete, _, self._pending = self._pending.rpartition("\n")
            self._emit(complete + "\n")
        if len(self._pending) > 8192:
            self._emit(self._pending)
            self._pending = ""
        return len(text)

    def flush(self) -> None:
        if self._pending and self._interactive:
            self._emit(self._pending)
            self._pending = ""
        self.stream.flush()

    def close_pending(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return self._interactive

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")

    def writable(self) -> bool:
        return True

    def _emit(self, text: str) -> None:
        self.stream.write(console_safe(self.redactor.text(text), interactive=self._interactive))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def guarded_console(redactor: Redactor) -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` redacted and neutralised for the duration."""
    saved = sys.stdout, sys.stderr
    streams = [ConsoleStream(stream, redactor) for stream in saved]
    sys.stdout, sys.stderr = streams
    try:
        yield
    finally:
        for stream in streams:
            stream.close_pending()
        sys.stdout, sys.stderr = saved
