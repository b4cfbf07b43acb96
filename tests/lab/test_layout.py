"""The lab's module graph: no import cycles, and no function-level import that is not
there for start-up time (and says so with a `# lazy:` comment)."""

from __future__ import annotations

from pathlib import Path

import grimp

from tests.unit import test_layering as layering

LAB = Path(__file__).resolve().parents[2] / "probes" / "lab"


def test_no_import_cycles_in_the_lab():
    g = grimp.build_graph("probes", include_external_packages=False)
    lab = sorted(m for m in g.modules if m.startswith("probes.lab"))
    cycles = []
    for m in lab:
        for imported in g.find_modules_directly_imported_by(m):
            if imported.startswith("probes.lab") and imported != m:
                back = g.find_shortest_chain(importer=imported, imported=m)
                if back:
                    cycles.append(" -> ".join((m, *back)))
    assert cycles == []


def test_function_level_imports_say_they_are_for_start_up():
    """The convention of tests/unit/test_layering.py: a `# lazy: why` comment."""
    assert layering.lazy_offenders(LAB) == []
