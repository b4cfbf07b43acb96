"""Where recordings live and how many are kept: one file per run under the user's state
directory, the oldest dropped first beyond `max_mb` in total or `max_age_days` of age."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

SUFFIX = ".aksrec"


def directory(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "aksnet-top" / "recordings"


def new_path(command: str, root: Path | None = None, now: float | None = None) -> Path:
    root = root or directory()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return root / f"{stamp}-{command}-{os.getpid()}{SUFFIX}"


def recordings(root: Path | None = None) -> list[Path]:
    """The recordings, oldest first."""
    root = root or directory()
    try:
        found = [p for p in root.iterdir() if p.suffix == SUFFIX and p.is_file()]
    except OSError:
        return []
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def prune(root: Path | None, max_mb: float, max_age_days: float, keep: Path | None = None) -> list[Path]:
    """Drop recordings older than `max_age_days`, then the oldest until the rest fit in
    `max_mb`. `keep` (the run's own file) is never dropped. Returns what was removed."""
    removed: list[Path] = []
    now = time.time()
    files = [p for p in recordings(root) if p != keep]
    total = sum(_size(p) for p in files) + (_size(keep) if keep is not None else 0)
    for p in list(files):
        old = now - _mtime(p) > max_age_days * 86400
        if old or total > max_mb * 1024 * 1024:
            total -= _size(p)
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0
