"""The flight recorder's commands: `replay FILE`, `bundle`, the recorder of a run
(`--no-record`) and `check --save-baseline/--baseline`. Never imports textual itself: the
replay app loads only for `replay`."""

from __future__ import annotations

import argparse
import sys
import time
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


def bundle_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="aksnet-top bundle",
        description="Write one archive of the evidence: the recordings of a window, its findings, the topology, "
        "the config in effect (redacted), versions and a SUMMARY.md to read first.",
    )
    p.add_argument("--since", default="30m", help="the window: the last 30m (default), 2h, 90s, 1d")
    p.add_argument(
        "-o", "--output", metavar="FILE", type=Path, help="the archive (default: ./aksnet-top-bundle-<time>.tar.gz)"
    )
    p.add_argument(
        "--redact-ids",
        action="store_true",
        help="replace subscription ids, IP addresses and the cluster's names by pseudonyms (the same in every file)",
    )
    p.add_argument(
        "--recording",
        action="append",
        type=Path,
        metavar="FILE",
        help="bundle these recordings (default: the state directory's)",
    )
    p.add_argument("--config", metavar="PATH", type=Path)
    return p


def run_bundle(argv: list[str]) -> int:
    ns = bundle_parser().parse_args(argv)
    try:
        cfg = configmod.load(path=ns.config)
    except configmod.ConfigError as e:
        _err(str(e))
        return ExitCode.USAGE
    # lazy: the bundle (tarfile, the reader) only for `aksnet-top bundle`
    from probes.record import bundle, store

    try:
        since = bundle.parse_since(ns.since)
    except ValueError as e:
        _err(str(e))
        return ExitCode.USAGE
    paths = ns.recording or store.recordings(Path(cfg.record.dir).expanduser() if cfg.record.dir else None)
    out = ns.output or Path(f"aksnet-top-bundle-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz")
    # lazy: the version (importlib.metadata) only when a bundle is written
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("aksnet-top")
    except PackageNotFoundError:
        ver = "unknown (not installed)"
    try:
        path = bundle.make(paths, out, since=since, config=cfg, version=ver, redact_ids=ns.redact_ids)
    except bundle.BundleError as e:
        _err(str(e))
        return ExitCode.COULD_NOT_RUN
    print(f"wrote {path} — read SUMMARY.md first")
    return ExitCode.HEALTHY


def add_baseline_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--save-baseline", metavar="FILE", type=Path, help="keep this run's report to compare later runs with"
    )
    p.add_argument(
        "--baseline",
        metavar="FILE",
        type=Path,
        help="say what changed since that run (nodes, pools, routes, resolvers, egress, SNAT) and which findings "
        "are new; the exit code is decided by the new findings",
    )


def load_baseline(ns: argparse.Namespace) -> tuple[dict[str, Any] | None, int | None]:
    """The --baseline report, or (None, exit code) after saying why it cannot be read."""
    if getattr(ns, "baseline", None) is None:
        return None, None
    # lazy: the comparison only for --baseline
    from probes.record import baseline

    try:
        return baseline.load(ns.baseline), None
    except baseline.BaselineError as e:
        _err(str(e))
        return None, ExitCode.USAGE


def apply_baseline(before: dict[str, Any] | None, result: Any) -> Any:
    """Add the comparison to `result.report` and decide the exit by the new findings."""
    if before is None:
        return None
    # lazy: the comparison only for --baseline
    from probes import check
    from probes.record import baseline

    diff = baseline.compare(before, result.report)
    result.report["baseline"] = diff.to_json()
    if result.exit in (check.Exit.HEALTHY, check.Exit.WARNINGS, check.Exit.CRITICAL):
        new = {(f["rule"], f["subject"]) for f in diff.new_findings}
        result.exit = check.exit_for([f for f in result.findings if (f.rule, f.subject) in new])
        result.report["exit_code"] = int(result.exit)
    return diff


def finish_baseline(ns: argparse.Namespace, result: Any, diff: Any, table: bool) -> int | None:
    """Print the comparison (table output) and save --save-baseline; an exit code on failure."""
    # lazy: the comparison only with a baseline flag
    from probes.record import baseline

    if diff is not None and table:
        baseline.render(diff, sys.stdout)
    if getattr(ns, "save_baseline", None) is not None:
        try:
            baseline.save(result.report, ns.save_baseline)
        except baseline.BaselineError as e:
            _err(str(e))
            return ExitCode.COULD_NOT_RUN
    return None
