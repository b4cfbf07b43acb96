"""Where log records go: our own warnings to the terminal in one line each, the libraries'
(urllib3's "Retrying …", azure-identity's credential-chain dump, Python warnings) never;
with ``--debug`` everything, ours and theirs, to a file under the user's state directory.

Every line that leaves here, on the terminal or in the file, has its URLs' credentials
replaced (probes.redact): a debug log is the kind of file that gets attached to an issue.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from probes.redact import redact_text

__all__ = ["OWN", "LogSetupError", "RedactingFormatter", "setup", "state_dir"]

OWN = ("probes", "tui", "aksnet")  # logger names (and their children) that are ours


class LogSetupError(Exception):
    """The debug log cannot be written (one line for the user)."""


class RedactingFormatter(logging.Formatter):
    """A formatter whose every line (message, arguments, traceback) has its URLs redacted;
    `one_line` folds line breaks for the terminal."""

    def __init__(self, fmt: str, datefmt: str | None = None, *, one_line: bool = False) -> None:
        super().__init__(fmt, datefmt)
        self.one_line = one_line

    def format(self, record: logging.LogRecord) -> str:
        text = redact_text(super().format(record))
        return " ".join(text.split()) if self.one_line else text


class _OwnOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".", 1)[0] in OWN


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_STATE_HOME/aksnet-top, else ~/.local/state/aksnet-top."""
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "aksnet-top"


_OURS = "_aksnet_handler"


def setup(
    prog: str,
    *,
    terminal: bool,
    debug: bool,
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> Path | None:
    """Install the handlers (again: the previous ones of an earlier call are removed).
    `terminal`: our WARNING+ records to stderr as ``<prog>: message`` (False for the full
    screen app, whose status lines say it). Returns the debug log's path, or None.
    Raises LogSetupError when the debug log cannot be created."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _OURS, False):
            root.removeHandler(h)
            h.close()
    logging.captureWarnings(True)  # InsecureRequestWarning and friends: records of "py.warnings"
    handlers: list[logging.Handler] = []
    if terminal:
        term = logging.StreamHandler(stream or sys.stderr)
        term.setLevel(logging.WARNING)
        term.addFilter(_OwnOnly())
        term.setFormatter(RedactingFormatter(f"{prog}: %(message)s", one_line=True))
        handlers.append(term)
    else:
        handlers.append(logging.NullHandler())  # nothing from Python's last-resort handler
    path: Path | None = None
    if debug:
        d = state_dir(env)
        path = d / f"debug-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        try:
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            fh = logging.FileHandler(path, encoding="utf-8", delay=False)
        except OSError as e:
            raise LogSetupError(f"--debug: cannot write a log in {d}: {e.strerror or e}") from None
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
        handlers.append(fh)
    for h in handlers:
        setattr(h, _OURS, True)
        root.addHandler(h)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    return path
