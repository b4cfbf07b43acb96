"""The exit codes of every `aksnet-top` command, and the argparse that uses them.

One table for the app, `check`, `lab`, `config` and `agent …`, so a pipeline can tell a
cluster in trouble (1, 2) from a run that told it nothing (3) and from a command line or
configuration that needs fixing (4). argparse's own usage errors would exit 2, which
here means "critical": :class:`ArgumentParser` makes them 4 and puts the table in every
``--help``. Never imports textual.
"""

from __future__ import annotations

import argparse
import sys
from enum import IntEnum
from typing import Any, NoReturn


class ExitCode(IntEnum):
    HEALTHY = 0  # also "done" for commands that report no health
    WARNINGS = 1
    CRITICAL = 2
    COULD_NOT_RUN = 3  # no kubeconfig, cluster unreachable, forbidden, the demo did not start
    USAGE = 4  # bad flag or value, unknown scenario, bad configuration file or variable


EPILOG = "Exit codes: 0 healthy (or done), 1 warnings, 2 critical, 3 could not run, 4 usage or configuration error."


def with_exit_codes(epilog: str | None) -> str:
    """An epilog that ends with the exit code table."""
    if epilog and "\n" in epilog:  # laid out by hand (RawDescriptionHelpFormatter): a paragraph of its own
        return f"{epilog}\n\n" + EPILOG.replace(" 3 could", "\n3 could")
    return f"{epilog} {EPILOG}" if epilog else EPILOG


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors exiting 4 (not 2) and the exit codes in the epilog."""

    def __init__(self, *args: Any, epilog: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "epilog": with_exit_codes(epilog)})

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")
