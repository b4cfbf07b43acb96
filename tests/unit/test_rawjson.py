"""Trimming node images from raw list bodies keeps every other byte's meaning."""

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.kube.rawjson import drop_images, loads_list
from tests.support.kubejson import node

names = st.lists(
    st.text(alphabet=st.characters(blacklist_characters='"\\{}[]', min_codepoint=32, max_codepoint=0x2FF), max_size=30),
    max_size=4,
)
images = st.lists(st.builds(lambda n, s: {"names": n, "sizeBytes": s}, names, st.integers(0, 10**10)), max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(images, min_size=1, max_size=6))
def test_trimmed_decode_equals_full_decode_without_images(per_node):
    items = []
    for i, imgs in enumerate(per_node):
        obj = node(name=f"n{i}")
        obj["status"]["images"] = imgs
        items.append(obj)
    body = orjson.dumps({"kind": "NodeList", "items": items, "metadata": {"resourceVersion": "7"}})
    got = loads_list(body, trim_images=True)
    for obj in items:
        obj["status"]["images"] = []
    assert got == {"kind": "NodeList", "items": items, "metadata": {"resourceVersion": "7"}}


def test_images_key_in_other_places_is_left_alone():
    body = b'{"items":[{"metadata":{"annotations":{"x":"\\"images\\":[1]"}},"status":{"images":[{"names":["a"],"sizeBytes":1}]}}]}'
    doc = loads_list(body, trim_images=True)
    assert doc["items"][0]["status"]["images"] == []
    assert doc["items"][0]["metadata"]["annotations"]["x"] == '"images":[1]'


def test_unexpected_shape_falls_back_to_full_decode():
    body = b'{"items":[{"status":{"images":[{"names":["odd}]name"],"sizeBytes":1}]}}]}'
    assert loads_list(body, trim_images=True) == orjson.loads(body)  # the cut broke the JSON: full decode
    assert drop_images(b'{"a":1}') == b'{"a":1}'


def test_peek_continue_reads_the_list_head():
    from probes.kube.rawjson import peek_continue

    assert (
        peek_continue(b'{"kind":"NodeList","metadata":{"resourceVersion":"9","continue":"abc="},"items":[]}') == "abc="
    )
    assert (
        peek_continue(b'{"kind":"NodeList","metadata":{"resourceVersion":"9"},"items":[{"metadata":{"continue":"x"}}]}')
        == ""
    )
    assert peek_continue(b'{"items":[],"metadata":{"continue":"abc"}}') is None  # unknown shape: wait for the decode
