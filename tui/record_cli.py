"""The flight recorder's commands: `replay FILE`, `bundle`, the recorder of a run
(`--no-record`) and `check --save-baseline/--baseline`. Never imports textual itself: the
replay app loads only for `replay`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from probes import config as configmod
from probes.exitcodes import ArgumentParser, ExitCode


def _err(msg: str) -> None:
    print(f"aksnet-top: {msg}", file=sys.stderr)


def recorder_for(cfg: configmod.Config, command: str, no_record: bool, target: str = "") -> Any:
    """This run's recorder, or None (`--no-record`, `record.enabled = false`, or the state
    directory cannot be written: said once, the run goes on)."""
    if no_record or not cfg.record.enabled:
        return None
    # lazy: the recorder (sqlite3, msgspec) only for a run that records
    from probes.record.writer import start

    return start(command, cfg.record, meta={"target": target}, warn=_err)


def replay_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="aksnet-top replay",
        description="Open a recording read-only in the app: every pane as it was at the cursor. No cluster, no network.",
    )
    p.add_argument("file", nargs="?", help="a recording (default: the newest one in the state directory)")
    p.add_argument("--at", type=float, metavar="SECONDS", help="open at this many seconds from the start")
    p.add_argument("--speed", type=float, default=1.0, metavar="N", help="play at N× (default 1)")
    p.add_argument("--config", metavar="PATH", type=Path)
    return p


def run_replay(argv: list[str]) -> int:
    ns = replay_parser().parse_args(argv)
    try:
        cfg = configmod.load(path=ns.config)
    except configmod.ConfigError as e:
        _err(str(e))
        return ExitCode.USAGE
    # lazy: the reader only for `replay`
    from probes.record import store
    from probes.record.reader import Recording, RecordingError

    path = ns.file
    if path is None:
        found = store.recordings(Path(cfg.record.dir).expanduser() if cfg.record.dir else None)
        if not found:
            _err(f"no recordings in {store.directory()}; give a file")
            return ExitCode.USAGE
        path = str(found[-1])
    try:
        rec = Recording(path)
    except RecordingError as e:
        _err(str(e))
        return ExitCode.USAGE
    # lazy: textual only when the replay opens
    from tui.replay import run as run_replay_app

    return run_replay_app(rec, cfg, at=ns.at, speed=ns.speed)
