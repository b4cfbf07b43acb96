"""A list's pages fetched back to back on their own thread while the caller decodes them.

Each page's continue token is read from the inflated head of its raw body (the API
server writes `metadata` before `items`: `probes.kube.rawjson.peek_continue`), so the
request for the next page goes out before this one is inflated or decoded. Per page, the
critical path is the server's answer and the read of its bytes; inflating and decoding
(about a third of that at 500 nodes a page) run on the caller's thread meanwhile.

At most DEPTH pages wait undecoded, so memory stays bounded when decoding is the slower
side. When the head does not give the token, or gives another one than the decoded page,
the stream starts again at the page the caller asks for: no page is ever used for
another, and none is asked twice unless the head was misread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from probes.kube.connect import inflate, inflate_head
from probes.kube.rawjson import peek_continue

DEPTH = 2  # pages fetched ahead of the decode at most
PUT_POLL = 0.1  # s between looks at `closed` while the queue is full (bounds close())

Fetch = Callable[[str], tuple[bytes, str]]  # continue token -> (raw body, content coding)


class _Ahead:
    """One run of pages from `start`, each fetched as soon as the previous one's head is read."""

    def __init__(self, fetch: Fetch, start: str, name: str) -> None:
        self._fetch = fetch
        self.next: str | None = start  # the page the next take() returns (None: no more ahead)
        self._pages: queue.Queue[tuple[bytes, str, str | None] | BaseException] = queue.Queue(DEPTH)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(start,), name=name, daemon=True)
        self._thread.start()

    def _run(self, cont: str) -> None:
        while not self._closed.is_set():
            item: tuple[bytes, str, str | None] | BaseException
            try:
                raw, coding = self._fetch(cont)
                early = peek_continue(inflate_head(raw, coding))
                item = (raw, coding, early)
            except BaseException as e:  # noqa: BLE001 - handed to the caller in take()
                item, early = e, None
            while not self._closed.is_set():
                try:
                    self._pages.put(item, timeout=PUT_POLL)
                    break
                except queue.Full:
                    continue
            if not early:
                return
            cont = early

    def take(self) -> bytes:
        """The inflated body of page `self.next`; raises what its fetch raised."""
        item = self._pages.get()
        if isinstance(item, BaseException):
            self.next = None
            raise item
        raw, coding, early = item
        self.next = early  # None: the run stopped here (a last page, or a head without a token)
        return inflate(raw, coding)

    def close(self) -> None:
        """Stop fetching ahead: a request in flight finishes (its connection goes back to the
        pool, bounded by its own timeout), and what was fetched is dropped."""
        self._closed.set()
        while self._thread.is_alive():
            try:
                self._pages.get(timeout=PUT_POLL)
            except queue.Empty:
                pass
        self._thread.join()


class PageStream:
    """The pages of one list, in order: `get(cont)` for each continue token the decode finds."""

    def __init__(self, fetch: Fetch, name: str) -> None:
        self._fetch, self._name = fetch, name
        self._ahead: _Ahead | None = None

    def get(self, cont: str) -> bytes:
        """The inflated body of the page at `cont` ("" for the first)."""
        ahead = self._ahead
        if ahead is None or ahead.next != cont:  # the first page, or the head was misread
            self.close()
            ahead = self._ahead = _Ahead(self._fetch, cont, self._name)
        return ahead.take()

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.close()
            self._ahead = None
