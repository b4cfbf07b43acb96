"""Calico's selector syntax, the common subset, compiled to a predicate over labels.

Supported: `all()`, `k == "v"`, `k != "v"`, `has(k)`, `k in {"a", "b"}`, `k not in {…}`,
`k contains "s"`, `k starts with "s"`, `k ends with "s"`, `!`, `&&`, `||` and parentheses,
with Calico's meaning (`!=` and `not in` match a pod without the label). Anything else
(`global()`, a syntax error) raises `Unsupported`: the caller says "cannot evaluate"
rather than guess. Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

Match = Callable[[Mapping[str, str]], bool]

__all__ = ["Unsupported", "compile_selector", "Match"]


class Unsupported(ValueError):
    """A selector outside the subset evaluated here (or not a selector at all)."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"[^"]*"|'[^']*')
    | (?P<op>==|!=|&&|\|\||!|\(|\)|\{|\}|,)
    | (?P<word>[A-Za-z0-9_./\-]+)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise Unsupported(f"unexpected {text[pos : pos + 10]!r} at {pos}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        out.append((kind, value[1:-1] if kind == "str" else value))
        pos = m.end()
    return out


class _SelectorParser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        k, v = self.peek()
        if (value is not None and v != value) or (kind is not None and k != kind) or k == "end":
            raise Unsupported(f"expected {value or kind}, found {v or 'the end'!r}")
        self.i += 1
        return v

    def parse(self) -> Match:
        m = self.or_()
        if self.peek()[0] != "end":
            raise Unsupported(f"unexpected {self.peek()[1]!r}")
        return m

    def or_(self) -> Match:
        parts = [self.and_()]
        while self.peek() == ("op", "||"):
            self.i += 1
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]
        return lambda labels: any(p(labels) for p in parts)

    def and_(self) -> Match:
        parts = [self.unary()]
        while self.peek() == ("op", "&&"):
            self.i += 1
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda labels: all(p(labels) for p in parts)

    def unary(self) -> Match:
        if self.peek() == ("op", "!"):
            self.i += 1
            inner = self.unary()
            return lambda labels: not inner(labels)
        if self.peek() == ("op", "("):
            self.i += 1
            inner = self.or_()
            self.take(")")
            return inner
        return self.term()

    def _set(self) -> frozenset[str]:
        self.take("{")
        values: list[str] = []
        while self.peek() != ("op", "}"):
            values.append(self.take(kind="str"))
            if self.peek() == ("op", ","):
                self.i += 1
        self.take("}")
        return frozenset(values)

    def term(self) -> Match:
        kind, word = self.peek()
        if kind != "word":
            raise Unsupported(f"unexpected {word or 'end'!r}")
        if word in ("all", "global", "has") and self.peek(1) == ("op", "("):
            self.i += 2
            if word == "all":
                self.take(")")
                return lambda labels: True
            if word == "global":
                raise Unsupported("global() (host endpoints) is not evaluated")
            key = self.take(kind="word")
            self.take(")")
            return lambda labels: key in labels
        self.i += 1
        key = word
        k2, nxt = self.peek()
        if (k2, nxt) == ("op", "=="):
            self.i += 1
            value = self.take(kind="str")
            return lambda labels: labels.get(key) == value
        if (k2, nxt) == ("op", "!="):
            self.i += 1
            value = self.take(kind="str")
            return lambda labels: labels.get(key) != value
        if nxt == "in":
            self.i += 1
            values = self._set()
            return lambda labels: labels.get(key) in values
        if nxt == "not" and self.peek(1) == ("word", "in"):
            self.i += 2
            values = self._set()
            return lambda labels: labels.get(key) not in values
        if nxt == "contains":
            self.i += 1
            s = self.take(kind="str")
            return lambda labels: key in labels and s in labels[key]
        if nxt in ("starts", "ends") and self.peek(1) == ("word", "with"):
            self.i += 2
            s = self.take(kind="str")
            if nxt == "starts":
                return lambda labels: key in labels and labels[key].startswith(s)
            return lambda labels: key in labels and labels[key].endswith(s)
        raise Unsupported(f"{key!r} followed by {nxt or 'the end'!r}")


@functools.lru_cache(maxsize=4096)
def compile_selector(text: str) -> Match:
    """The predicate of a Calico selector; "" (or only spaces) selects everything.
    Raises Unsupported for what is outside the subset."""
    if not text.strip():
        return lambda labels: True
    return _SelectorParser(text).parse()
