"""check's phase marks: logged once each, at DEBUG only, in seconds since the process started."""

from __future__ import annotations

import logging
import re

from probes.phases import PREFIX, Phases


def test_marks_are_logged_once_each_at_debug_in_order(caplog):
    with caplog.at_level(logging.DEBUG, logger="aksnet-top.check"):
        p = Phases()
        assert p.enabled
        for name in ("lab ready", "kube lists live", "lab ready", "settled"):
            p.mark(name)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(PREFIX)]
    assert [ln.split(" s ", 1)[1] for ln in lines] == ["lab ready", "kube lists live", "settled"]
    at = [float(re.match(rf"{PREFIX}\+([0-9.]+) s", ln).group(1)) for ln in lines]
    # since the process started (this test's interpreter ran imports before): > 0, in order
    assert 0 < at[0] <= at[1] <= at[2] and abs(at[2] - p.marks["settled"]) < 0.001


def test_marks_cost_nothing_unless_debug(caplog):
    with caplog.at_level(logging.WARNING, logger="aksnet-top.check"):
        p = Phases()
        p.mark("lab ready")
    assert not p.enabled and p.marks == {} and not caplog.records
