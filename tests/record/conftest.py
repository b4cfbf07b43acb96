from __future__ import annotations

from pathlib import Path

import pytest

from tests.record.engine import FLAPPING, record_demo


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A 22 s recording of the demo whose NodeLocal DNS fails on one node from 6 s to 14 s."""
    d = tmp_path_factory.mktemp("rec")
    scenario = d / "flap.yaml"
    scenario.write_text(FLAPPING)
    path = d / "run.aksrec"
    info = record_demo(str(scenario), path, 22.0)
    return path, info
