"""The C allocator under a long-running, many-threaded app (glibc only; a no-op elsewhere).

Two things keep the app's resident memory growing with glibc's defaults although its live
objects do not: every thread that allocates under contention gets an arena of its own (up
to 8 per core), and freed memory inside an arena's heap is not given back to the system
while anything above it lives. Each SNAT refresh at 5,000 nodes allocates and frees tens of
megabytes in small blocks, so the process kept the high-water mark of every refresh.
:func:`limit_arenas` (before the engine's threads start) caps the arenas at two;
:func:`trim` (after a refresh) hands the free pages back (``malloc_trim``: ~ms, GIL released).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

M_ARENA_MAX = -8  # glibc's mallopt parameter number

_libc: Any = None


def _glibc() -> Any:
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                if hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt"):  # glibc, not musl
                    lib.malloc_trim.argtypes = [ctypes.c_size_t]
                    lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                    _libc = lib
            except OSError:
                pass
    return _libc


def limit_arenas(n: int = 2) -> bool:
    """Cap glibc's malloc arenas at `n` for threads created from now on. True if applied."""
    lib = _glibc()
    return bool(lib and lib.mallopt(M_ARENA_MAX, n) == 1)


def trim() -> bool:
    """Return free heap pages to the system. True if any memory was released."""
    lib = _glibc()
    return bool(lib and lib.malloc_trim(0) == 1)


__all__ = ["limit_arenas", "trim"]
