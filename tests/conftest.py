"""Suite-wide: nothing a test runs writes into the user's own state directory (the flight
recorder records every app and `check` run there by default)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
