"""One process-wide malloc setting, applied by the command's entry point (never by a library).

Why: glibc raises its mmap threshold each time an mmapped block is freed (the "dynamic
threshold", up to 32 MiB). After the first Kubernetes list page (a 500-node page is a
6 MB body, then its decompressed copy) every later body of that size comes from a thread's
heap arena instead, and a freed block inside an arena is rarely given back. Each
reflector thread has its own arena, so with the twenty list+watch threads of the topology
and ingress sources the collection at 5,000 nodes peaked at 240 MB of RSS for 70 MB of
live data (bench/topology_bench.py). A fixed threshold of 1 MiB sends every large body
to mmap and back to the kernel on free: the same collection peaks at 64 MB, no slower.

Only glibc is tuned (`mallopt` exists and returns 1); musl, macOS and a user's own
`MALLOC_MMAP_THRESHOLD_` are left alone. Never imports textual.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
THRESHOLD = 1 << 20  # bytes: a list page, an ARM body or a decompressed page is larger, a row is not


def tune_malloc(threshold: int = THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes; True when it was set."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no libc symbols to ask (a static build, musl without it)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
