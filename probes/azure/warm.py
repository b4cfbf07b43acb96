"""The Azure SDK's clients imported ahead of their first call.

The network client alone is ~0.6 s of imports (1-4 s on a busy host). The SNAT source
imports them in its own thread as it starts (while the nodes are listed); `check`, whose
verdict waits for ARM, starts them in a daemon thread once its own modules are loaded,
while it waits for the demo's lab and the lists, so the source finds them loaded. Light: the
standard library only until the thread runs.
"""

from __future__ import annotations

import threading


def import_sdk() -> None:
    """Import the clients the SNAT source uses (nothing when the SDK is missing: the
    source says so, with what to install)."""
    try:
        # lazy: the Azure SDK loads only when a run reads ARM, in the thread that warms it
        import azure.mgmt.containerservice
        import azure.mgmt.monitor
        import azure.mgmt.network  # noqa: F401
    except ImportError:
        pass


def in_background() -> threading.Thread:
    """Start import_sdk in a daemon thread; returns it (nobody needs to join it)."""
    t = threading.Thread(target=import_sdk, name="azure-sdk-import", daemon=True)
    t.start()
    return t
