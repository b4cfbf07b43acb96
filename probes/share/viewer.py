"""The viewer's side of a shared engine: stands where the app's publisher stands
(`publish`, `start`, `stop`, `follow`) and hands the app frames rebuilt from the owner's
messages (`probes.record.codec.Thawer`), at most one per `interval`. It starts no source:
the probes and API requests stay the owner's.

When the owner goes away (it exited and said so, or died), the last frame stays on screen
with the error line saying since when it is frozen: a person reading a finding keeps it,
and nothing on screen pretends to be live.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import msgspec

from probes.azure.path import PathData
from probes.engine.frame import Frame, PathView
from probes.engine.publisher import empty_snapshot
from probes.share import wire
from probes.share.frames import LiveFrames
from probes.share.host import PATH


class ViewerError(Exception):
    """The engine's owner did not answer as one; the message is for the user."""


class ViewerPublisher:
    snat = None  # no source here: the SNAT pane's refresh is asked of the owner (`ask`)

    def __init__(
        self,
        sock: socket.socket,
        *,
        interval: float = 0.25,
        hello_timeout: float = 5.0,
        first_wait: float = 3.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.sock = sock
        self.interval = interval
        self.wall_clock = wall_clock
        self.reader = wire.Reader(sock)
        sock.settimeout(hello_timeout)
        try:
            hello = self.reader.read()
        except (OSError, wire.WireError) as e:
            sock.close()
            raise ViewerError(f"the engine did not say hello: {e}") from None
        if hello.get("k") != "hello" or hello.get("proto") != wire.PROTO:
            sock.close()
            raise ViewerError(f"not an aksnet-top engine of this version (protocol {hello.get('proto')!r})")
        self.owner_pid = int(hello.get("pid") or 0)
        self.owner_banner = str(hello.get("banner") or "")
        self.target = str(hello.get("target") or "")
        self.live = LiveFrames()
        self.screens = 0  # how many screens show the engine, as the owner last said
        self.gone = ""  # why the owner went away, once it did
        self.frames = 0  # frames built (tests, benchmarks)
        self.latest: Frame | None = None
        self._path: tuple[Any, PathView | None] = (None, None)
        self._built: tuple[Frame | None, PathView | None, str, Frame | None] = (None, None, "", None)
        self._at = 0.0
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.first_wait = first_wait
        self._asked: dict[int, Callable[[str], None]] = {}  # ask id -> who hears the answer
        self._ask_lock = threading.Lock()
        self._ask_id = 0

    # --- messages ------------------------------------------------------------------------
    def _apply(self, msg: dict[str, Any]) -> bool:
        """Apply one message to the state; True if what is shown may have changed."""
        k = msg["k"]
        if k == "d":
            self.live.apply(msg.get("c") or {})
            self._at = float(msg.get("t") or 0.0)
            return True
        if k == "key":
            self.live.reset(msg.get("s") or {})
            self.screens = int(msg.get("n") or 0)
            self._at = float(msg.get("t") or 0.0)
            return True
        if k == "n":
            self.screens = int(msg.get("n") or 0)
            return True
        if k == "said":
            with self._ask_lock:
                reply = self._asked.pop(msg.get("id"), None)  # type: ignore[arg-type]
            if reply is not None:
                try:
                    reply(str(msg.get("text") or ""))
                except Exception:  # noqa: BLE001 - a closing app; the view goes on
                    pass
            return False
        if k == "bye":
            at = time.strftime("%H:%M:%S", time.localtime(float(msg.get("at") or self.wall_clock())))
            self.gone = f"the owner (pid {self.owner_pid}) exited at {at}: this view is frozen there; q quits"
            return True
        return False

    def _build(self) -> Frame:
        with self._lock:
            frame = self.live.frame(self._at)
            raw = self.live.base.get(PATH)
            if raw is not self._path[0]:
                data = None
                if raw is not None:
                    try:
                        data = msgspec.convert(raw, PathData)
                    except (msgspec.ValidationError, TypeError):
                        data = None
                view = None if data is None else PathView(data=data, fetched_at=float(data.fetched_at or 0.0))
                self._path = (raw, view)
            path = self._path[1]
            base, bpath, bgone, out = self._built
            if out is not None and base is frame and bpath is path and bgone == self.gone:
                return out
            shown = frame
            if path is not None or self.gone:
                shown = dataclasses.replace(frame, path=path, error=self.gone or frame.error)
            self._built = (frame, path, self.gone, shown)
            self.latest = shown
            self.frames += 1
            return shown

    # --- what the app calls on a publisher ------------------------------------------------
    def publish(self) -> Frame:
        """The first frame: the owner's whole state if it comes within `first_wait` s,
        else an empty frame (the cadence delivers the state when it lands: a big
        cluster's first state can take the owner a few seconds). Once the cadence runs
        (`start`), the latest frame."""
        if self.latest is not None or self._thread is not None:
            return self.latest if self.latest is not None else self._build()
        end = time.monotonic() + self.first_wait
        try:
            while not self.live.base and not self.gone:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.sock.settimeout(left)
                self._apply(self.reader.read())
        except TimeoutError:
            pass
        except (OSError, wire.WireError) as e:
            self.gone = f"the owner (pid {self.owner_pid}) went away before its first frame: {e}"
        if not self.live.base:
            return Frame(seq=0, kube=empty_snapshot(), error=self.gone)
        return self._build()

    def start(self, on_frame: Callable[[Frame], None]) -> None:
        if self._thread is not None:
            return

        def run() -> None:
            dirty = False
            last = 0.0
            self.sock.settimeout(self.interval)
            while not self._stop.is_set() and not self.gone:
                try:
                    dirty = self._apply(self.reader.read()) or dirty
                    # everything already here first: a frame is built from the newest state,
                    # never one message per (slow) build
                    while self.reader.pending() and not self.gone:
                        dirty = self._apply(self.reader.read()) or dirty
                except TimeoutError:
                    pass
                except (OSError, wire.WireError):
                    if self._stop.is_set():
                        return
                    at = time.strftime("%H:%M:%S", time.localtime(self.wall_clock()))
                    self.gone = f"the owner (pid {self.owner_pid}) went away at {at}: this view is frozen; q quits"
                    dirty = True
                now = time.monotonic()
                if dirty and (now - last >= self.interval or self.gone):
                    dirty, last = False, now
                    try:
                        on_frame(self._build())
                    except Exception:  # noqa: BLE001 - a closing app; the next frame tries again
                        pass
            try:
                self.sock.close()
            except OSError:
                pass

        self._thread = threading.Thread(target=run, name="share-viewer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        try:
            self.sock.close()
        except OSError:
            pass

    def follow(self, kind: str, key: Hashable) -> None:
        """A detail screen wants this row's last results: the owner's publisher puts them
        in its frames while any screen follows the row."""
        self._ask("follow", kind, key)

    def unfollow(self, kind: str, key: Hashable) -> None:
        self._ask("unfollow", kind, key)

    def ask(self, action: str, reply: Callable[[str], None]) -> None:
        """A key that asks the engine to act (`probes.share.asks`): the owner does it (or
        says why not) and `reply` hears its answer, on the viewer's thread."""
        if self.gone:
            reply(f"not asked: {self.gone}")
            return
        with self._ask_lock:
            self._ask_id += 1
            rid = self._ask_id
            self._asked[rid] = reply
        try:
            with self._send_lock:
                wire.send(self.sock, {"k": "ask", "what": action, "id": rid})
        except OSError as e:
            with self._ask_lock:
                self._asked.pop(rid, None)
            reply(f"not asked: the engine's owner did not take it ({e})")

    def _ask(self, what: str, kind: str, key: Hashable) -> None:
        if self.gone:
            return
        try:
            with self._send_lock:
                wire.send(self.sock, {"k": what, "kind": kind, "key": list(key) if isinstance(key, tuple) else [key]})
        except OSError:
            pass  # the owner is gone: the reader says so
