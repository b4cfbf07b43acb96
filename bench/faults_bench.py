"""The Kubernetes source under API-server faults: for each fault of the scriptable loopback
server (tests/support/faultapi.py), with the default configuration (watch renewed every
8-10 s, silent for 2 s past that = stale):

  show      seconds from the fault to the first status that is not "live" (what the
            status line and the header show);
  req/s     the most requests per second of any one kind during the fault window;
  lists     the most full lists of any one kind during the window;
  converge  seconds from the server's return to every kind live with the server's nodes.

    PYTHONPATH=. .venv/bin/python bench/faults_bench.py [--window 8]

Targets: show <= 5 s after the cause is visible on the wire (a frozen server: within 5 s
of the watch deadline, 12 s), req/s <= 1 per kind, converge within 2 backoff steps of the
wait announced when the server returned. Last line: key=value.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from probes.config import KubeConfig
from probes.engine.store import Store, worst_status
from probes.kube.kinds import KINDS
from probes.kube.model import SourceState
from probes.kube.source import KubeSource
from tests.support.faultapi import FaultApi

KIND_NAMES = [k.name for k in KINDS]


def all_live(store: Store) -> bool:
    snap = store.snapshot()
    return all((s := snap.status(f"kubernetes/{k}")) is not None and s.state is SourceState.LIVE for k in KIND_NAMES)


def wait(cond: Callable[[], bool], timeout: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def mode(name: str, expire: bool = True) -> Callable[[FaultApi], None]:
    def apply(api: FaultApi) -> None:
        api.set_mode(name)
        if expire:
            api.expire_all()  # the open watches end: every kind meets the fault now

    return apply


def restart_with_3(api: FaultApi) -> None:
    api.replace_state(nodes=3)


FAULTS: list[tuple[str, Callable[[FaultApi], None], bool]] = [
    ("freeze (stopped process)", mode("freeze", expire=False), True),
    ("blackhole", mode("blackhole", expire=False), True),
    ("410 on every watch", mode("gone"), False),
    ("504 too-large RV", mode("too_large"), False),
    ("429 Retry-After 2", mode("throttle"), False),
    ("401", mode("unauthorized"), False),
    ("403", mode("forbidden"), False),
    ("ERROR event w/o Status", mode("bad_error"), False),
    ("streams cut mid-event", mode("cut"), False),
    ("state replaced (5 -> 3)", restart_with_3, False),
]


def one(name: str, apply: Callable[[FaultApi], None], slow: bool, window: float) -> dict[str, float | str | None]:
    with FaultApi(nodes=5, bookmark_interval=1.0) as api, tempfile.TemporaryDirectory() as d:
        kc = api.write_kubeconfig(Path(d) / "kc")
        store = Store()
        src = KubeSource(store, KubeConfig(kubeconfig=kc))
        src.start()
        try:
            if wait(lambda: all_live(store), 15) is None:
                return {"fault": name, "error": "never live"}
            t0 = time.monotonic()
            apply(api)
            shown = wait(
                lambda: (w := worst_status(store.snapshot().statuses)) is not None and w.state is not SourceState.LIVE,
                window + (14 if slow else 0),
            )
            end = max(t0 + window, time.monotonic() + (2 if slow else 0))
            time.sleep(max(0.0, end - time.monotonic()))
            t1 = time.monotonic()
            rate = max(api.count(kind=k, since=t0, until=t1) for k in KIND_NAMES) / (t1 - t0)
            lists = max(api.count("list", k, t0, t1) for k in KIND_NAMES)
            retry = [s.retry_at for s in store.snapshot().statuses if s.retry_at is not None]
            announced = max(0.0, max(retry) - time.monotonic()) if retry else 0.0
            if api.mode != "ok":
                api.set_mode("ok")
            want = len(api.node_names())
            converge = wait(lambda: all_live(store) and len(store.snapshot().topology.nodes) == want, 90)
            return {
                "fault": name,
                "show": shown,
                "rate": rate,
                "lists": lists,
                "announced": announced,
                "converge": converge,
            }
        finally:
            src.stop(2.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=8.0, help="seconds each fault lasts (a frozen server: + 14)")
    args = ap.parse_args()
    rows = [one(n, f, slow, args.window) for n, f, slow in FAULTS]
    print(f"{'fault':28} {'show s':>7} {'req/s/kind':>11} {'lists':>6} {'next try s':>11} {'converge s':>11}")

    def f(v: object) -> str:
        return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)

    for r in rows:
        if "error" in r:
            print(f"{r['fault']:28} {r['error']}")
            continue
        print(
            f"{r['fault']:28} {f(r['show']):>7} {f(r['rate']):>11} {f(r['lists']):>6} "
            f"{f(r['announced']):>11} {f(r['converge']):>11}"
        )
    ok = [r for r in rows if "error" not in r]
    worst_show = max((r["show"] for r in ok if isinstance(r["show"], float)), default=0.0)
    worst_rate = max(float(r["rate"] or 0) for r in ok)
    worst_conv = max((r["converge"] for r in ok if isinstance(r["converge"], float)), default=0.0)
    print(f"show_max_s={worst_show:.2f} rate_max_per_kind={worst_rate:.2f} converge_max_s={worst_conv:.2f}")


if __name__ == "__main__":
    main()
