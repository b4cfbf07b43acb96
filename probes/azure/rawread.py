"""ARM reads as JSON, without the SDK's models: one answer (`send`), or a whole list (`list_raw`).

The SDK's pager turns every item into a model (`RouteTable`, `Route`, …), then the callers
turn each back into its REST shape with `as_dict()`: at 5,000 nodes a kubenet cluster's
route table holds 5,000 routes, and that round trip cost ~0.5 s of CPU with the GIL held,
for a body orjson decodes in a few ms. `list_raw` sends the same request through the
client's own pipeline (credential, retries, the endpoint) and keeps the items as they
came. The metrics (probes.azure.service) are read the same way, through `send`. A non-2xx
answer raises the SDK's `HttpResponseError`, a body that is not an ARM list its
`DecodeError`, so the caller's error handling (`service._classify`) is the SDK path's.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_PAGES = 100  # an ARM list pages at 1,000 items or so: beyond this, a nextLink loop


def send(client: Any, request: Any, **options: Any) -> Any:
    """One request through an azure-mgmt client's pipeline (its `send_request`); the
    response with its body read (`.content`). A non-2xx answer raises HttpResponseError."""
    # lazy: the Azure SDK (~0.4 s) loads in the source's thread, never at start
    from azure.core.exceptions import HttpResponseError

    sender = getattr(client, "send_request", None) or client._send_request  # the name varies by package
    resp = sender(request, **options)
    resp.read()  # a streamed answer too: the error's text and the caller's parse read it
    if not 200 <= resp.status_code < 300:
        raise HttpResponseError(response=resp)
    return resp


def list_raw(client: Any, request: Any, **options: Any) -> list[dict[str, Any]]:
    """Every item of an ARM list: its pages' `value`s, following `nextLink`. `client`: an
    azure-mgmt client; `request`: the first page's HttpRequest.
    Items that are not objects are dropped."""
    # lazy: the Azure SDK (~0.4 s) loads in the source's thread, never at start
    from azure.core.exceptions import DecodeError
    from azure.core.rest import HttpRequest

    out: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        resp = send(client, request, **options)
        try:
            doc = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise DecodeError("the body is not valid JSON", response=resp) from None
        items = doc.get("value") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise DecodeError("the body is not an ARM list (no 'value' array)", response=resp)
        out.extend(x for x in items if isinstance(x, dict))
        link = doc.get("nextLink")
        if not link or not isinstance(link, str):
            return out
        request = HttpRequest("GET", link)
    raise DecodeError(f"the list did not end after {MAX_PAGES} pages (a nextLink loop)")
