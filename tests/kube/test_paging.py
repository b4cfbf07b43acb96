"""probes.kube.paging: a list's pages fetched back to back while the caller decodes them."""

from __future__ import annotations

import gzip
import threading
import time

import orjson
import pytest

from probes.kube import paging
from probes.kube.connect import BadBody, HttpError
from probes.kube.paging import PageStream


def page(n: int, last: int, *, meta_first: bool = True, token: str | None = None) -> bytes:
    """Page n of a NodeList that ends at page `last`; its continue token is "p{n+1}"."""
    cont = "" if n == last else (token if token is not None else f"p{n + 1}")
    meta = {"resourceVersion": "7", **({"continue": cont} if cont else {})}
    items = [{"metadata": {"name": f"node-{n}-{i}"}} for i in range(3)]
    doc = {"kind": "NodeList", "metadata": meta, "items": items} if meta_first else {"items": items, "metadata": meta}
    return orjson.dumps(doc)


class Server:
    """A fetch function over numbered pages, recording when each was asked and by which token."""

    def __init__(self, last: int, coding: str = "gzip", **shape: object) -> None:
        self.last, self.coding, self.shape = last, coding, shape
        self.asked: list[tuple[float, str]] = []
        self.fail_at: str | None = None
        self.delay = 0.0

    def body(self, n: int) -> bytes:
        return page(n, self.last, **self.shape)  # type: ignore[arg-type]

    def __call__(self, cont: str) -> tuple[bytes, str]:
        self.asked.append((time.monotonic(), cont))
        if self.delay:
            time.sleep(self.delay)
        if cont == self.fail_at:
            raise HttpError(410, "Expired", "the continue token is too old")
        n = int(cont[1:]) if cont else 1
        raw = self.body(n)
        return (gzip.compress(raw, 1), "gzip") if self.coding == "gzip" else (raw, "")


def read_all(pages: PageStream, decode_s: float = 0.0) -> list[int]:
    """Walk the list as the reflector does: the continue token comes from the decoded page."""
    seen, cont = [], ""
    for _ in range(50):
        doc = orjson.loads(pages.get(cont))
        seen.append(int(doc["items"][0]["metadata"]["name"].split("-")[1]))
        time.sleep(decode_s)
        cont = doc["metadata"].get("continue", "")
        if not cont:
            break
    pages.close()
    return seen


@pytest.mark.parametrize("coding", ["gzip", ""])
def test_every_page_once_in_order_and_the_next_asked_before_this_one_is_decoded(coding: str) -> None:
    srv = Server(last=5, coding=coding)
    got: list[tuple[float, int]] = []
    pages = PageStream(srv, "t-page")
    cont = ""
    for _ in range(10):
        doc = orjson.loads(pages.get(cont))
        got.append((time.monotonic(), int(doc["items"][0]["metadata"]["name"].split("-")[1])))
        time.sleep(0.05)  # decoding
        cont = doc["metadata"].get("continue", "")
        if not cont:
            break
    pages.close()
    assert [n for _, n in got] == [1, 2, 3, 4, 5]
    assert [c for _, c in srv.asked] == ["", "p2", "p3", "p4", "p5"]  # none twice, none past the last
    for (handed, _), (asked, _) in zip(got, srv.asked[1:]):
        assert asked < handed + 0.04  # page n+1 was asked while page n was being decoded


def test_a_head_without_the_token_still_reads_each_page_once() -> None:
    srv = Server(last=4, meta_first=False)  # items before metadata: the head does not say the token
    assert read_all(PageStream(srv, "t-page")) == [1, 2, 3, 4]
    assert [c for _, c in srv.asked] == ["", "p2", "p3", "p4"]


def test_a_misread_head_never_stands_for_the_page_asked() -> None:
    class Lying(Server):
        def body(self, n: int) -> bytes:
            raw = page(n, self.last)
            if n == 2:  # the head says one token, the decoded body (a later key) another
                raw = raw.replace(b'"continue":"p3"', b'"continue":"zz"', 1)
                raw = raw[:-1] + b',"metadata":{"resourceVersion":"7","continue":"p3"}}'
            return raw

    srv = Lying(last=4)
    assert read_all(PageStream(srv, "t-page")) == [1, 2, 3, 4]
    asked = [c for _, c in srv.asked]
    assert asked[:2] == ["", "p2"] and "p3" in asked and asked[-1] == "p4"
    assert asked.count("p3") == 1 and asked.count("p4") == 1


def test_a_failed_page_raises_to_the_caller_and_nothing_is_asked_after_it() -> None:
    srv = Server(last=6)
    srv.fail_at = "p3"
    pages = PageStream(srv, "t-page")
    assert orjson.loads(pages.get(""))["metadata"]["continue"] == "p2"
    pages.get("p2")
    with pytest.raises(HttpError) as e:
        pages.get("p3")
    assert e.value.status == 410
    pages.close()
    assert [c for _, c in srv.asked] == ["", "p2", "p3"]


def test_a_body_that_does_not_inflate_is_a_bad_body() -> None:
    def fetch(cont: str) -> tuple[bytes, str]:
        return gzip.compress(page(1, 1))[:-12] + b"garbage!", "gzip"

    pages = PageStream(fetch, "t-page")
    with pytest.raises(BadBody):
        pages.get("")
    pages.close()


def test_no_more_than_depth_pages_wait_and_close_ends_the_fetching_at_once() -> None:
    srv = Server(last=50)
    pages = PageStream(srv, "t-page")
    pages.get("")  # the caller then stalls: the fetcher fills the queue and waits
    deadline = time.monotonic() + 3
    while len(srv.asked) < 1 + paging.DEPTH + 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert len(srv.asked) == 1 + paging.DEPTH + 1  # DEPTH waiting, one more held for a free place
    t0 = time.monotonic()
    pages.close()
    assert time.monotonic() - t0 < 1.0
    assert not [t for t in threading.enumerate() if t.name == "t-page"]
    assert len(srv.asked) == 1 + paging.DEPTH + 1
