"""Byte-level trimming of large list bodies before they are decoded.

A Node's `status.images` (up to 50 images with all their tags and digests) is about
two thirds of a node list's bytes, and aksnet-top never looks at it. Cutting those
arrays out of the raw body before orjson sees it makes a 5,000-node list three times
cheaper to decode. The cut relies only on the shape the API server writes
(`"images":[{"names":[…],"sizeBytes":N},…]`: image objects hold no nested objects, so
the array ends at the first `}]`); if the result does not decode, callers fall back to
the untouched body.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_CONTINUE = re.compile(rb'"continue":"((?:[^"\\]|\\.)*)"')

IMAGES_KEY = b'"images":['


def drop_images(body: bytes) -> bytes:
    """`body` with every `"images":[…]` array emptied; unchanged if none is found."""
    if IMAGES_KEY not in body:
        return body
    out: list[bytes] = []
    pos = 0
    while True:
        start = body.find(IMAGES_KEY, pos)
        if start < 0:
            break
        inner = start + len(IMAGES_KEY)
        if body[inner : inner + 1] == b"]":  # already empty
            out.append(body[pos : inner + 1])
            pos = inner + 1
            continue
        end = body.find(b"}]", inner)
        if end < 0:
            return body
        out.append(body[pos:inner])
        out.append(b"]")
        pos = end + 2
    out.append(body[pos:])
    return b"".join(out)


def loads_list(body: bytes, trim_images: bool = False) -> Any:
    """Decode a List body, trimming node images first when asked; exact on any input."""
    if trim_images:
        trimmed = drop_images(body)
        if trimmed is not body:
            try:
                return orjson.loads(trimmed)
            except orjson.JSONDecodeError:
                pass  # an unexpected shape: decode the whole body instead
    return orjson.loads(body)


def peek_continue(body: bytes) -> str | None:
    """The list's continue token read from the raw head of the body, before decoding it.

    The API server writes `metadata` before `items`, so the token is in the first bytes;
    knowing it early lets the next page be fetched while this one is decoded. Returns
    "" for a last page, or None when the head does not have that shape (then wait for
    the decode).
    """
    items = body.find(b'"items"')
    meta = body.find(b'"metadata"', 0, items if items >= 0 else 4096)
    if items < 0 or meta < 0:
        return None
    m = _CONTINUE.search(body, meta, items)
    if not m:
        return ""
    if b"\\" not in m.group(1):
        return m.group(1).decode("utf-8", "replace")
    try:  # an escaped token (\u001f, \"): the JSON string's value, as the full decode would give
        token = orjson.loads(b'"' + m.group(1) + b'"')
    except orjson.JSONDecodeError:
        return None
    return token if isinstance(token, str) else None
