"""A replay seek as a person sees it: the replay app headless at 80x24 on a recording,
seeking to random moments. Each seek is timed (wall and CPU) from the request to the screen painted:
(a) the frame (`ReplayPublisher.seek`: the reader's state and the frame built from it),
(b) every pane's `tick` and the tree (`show_frame`), (c) the layout and a full paint of
the screen (the compositor's full update: more than a key's repaint, which is partial).

    PYTHONPATH=$PWD .venv/bin/python bench/replay_app_bench.py FILE [--seeks 30] [--tab 2]

FILE: a recording (`bench/recorder_bench.py --keep FILE` writes its 1-hour one); --tab: a
key that shows a pane first (2 = DNS: the seek then decodes the DNS rows it draws).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time

from probes.record.reader import Recording
from tui.replay import build


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--seeks", type=int, default=30)
    ap.add_argument("--tab", default="", help="a key pressed first (2: the DNS pane)")
    ns = ap.parse_args()
    rec = Recording(ns.file)
    app = build(rec)
    res: list[tuple[float, float, float, float]] = []
    cpu: list[tuple[float, float, float, float]] = []  # the same parts in CPU time (the app's one thread)

    async def go() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            if ns.tab:
                await pilot.press(ns.tab)
                await pilot.pause()
            rng = random.Random(1)
            for _ in range(ns.seeks):
                at = rng.uniform(rec.start, rec.end)
                t0, c0 = time.perf_counter(), time.thread_time()
                frame = app.replay.seek(at)
                t1, c1 = time.perf_counter(), time.thread_time()
                app.show_frame(frame)
                t2, c2 = time.perf_counter(), time.thread_time()
                await pilot._wait_for_screen()
                app.screen._compositor.render_full_update()
                t3, c3 = time.perf_counter(), time.thread_time()
                res.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
                cpu.append((c1 - c0, c2 - c1, c3 - c2, c3 - c0))
                await pilot.pause(0.05)

    asyncio.run(go())
    rec.close()

    def q(rs: list[tuple[float, float, float, float]], i: int, p: float) -> float:
        x = sorted(r[i] for r in rs)
        return x[min(len(x) - 1, int(p * len(x)))] * 1000

    for what, rs in (("wall", res), ("CPU", cpu)):
        parts = "; ".join(
            f"{n} median {q(rs, i, 0.5):.0f} p95 {q(rs, i, 0.95):.0f} max {max(r[i] for r in rs) * 1000:.0f}"
            for i, n in enumerate(("frame", "panes", "paint", "total"))
        )
        print(f"replay app 80x24, tab {ns.tab or '1 (topology)'}, {len(rs)} random seeks (ms {what}): {parts}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
