"""Shared Hypothesis strategies for the parser fuzzers: JSON-like values, and JSON-like
values biased towards the keys a parser looks up (so the fuzzer gets past the first
`.get`)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)


def json_like(keys: list[str] | tuple[str, ...] = (), scalars: Any = SCALARS, leaves: int = 25) -> Any:
    """Nested dicts and lists; dict keys drawn mostly from `keys` (when given)."""
    key = st.sampled_from(list(keys)) | st.text(max_size=12) if keys else st.text(max_size=12)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(key, inner, max_size=6),
        max_leaves=leaves,
    )


FUZZ = {"max_examples": 250, "deadline": None}
