"""What this host cannot reach is never a failure: a jumpbox without agents is healthy,
with one note saying what was not probed from here."""

from __future__ import annotations

from probes.check import exit_for
from probes.diagnose import Observations, Severity, diagnose
from probes.dns.probe import ProbeKey
from probes.engine.reach import CLUSTER_IP_WHY, LINK_LOCAL_WHY
from probes.exitcodes import ExitCode
from tests.diagnose.test_rules import EXTERNAL, NOW, stats, topology

SKIPPED = (
    ("local", "resolver/nodelocal", LINK_LOCAL_WHY),
    ("local", "resolver/kube-dns", CLUSTER_IP_WHY),
)


def test_jumpbox_without_agent_is_healthy_with_a_note():
    topo = topology()
    dns = {ProbeKey("local", "custom/10.1.0.4", EXTERNAL): stats()}
    found = diagnose(Observations(topo, dns, NOW, not_probed=SKIPPED))
    notes = [f for f in found if f.rule == "local-not-probed"]
    assert len(notes) == 1 and notes[0].severity is Severity.INFO
    assert "kube-dns, nodelocal" in notes[0].cause and "link-local" in notes[0].cause
    assert "agent" in notes[0].next_step
    assert exit_for(found) is ExitCode.HEALTHY


def test_no_note_once_an_agent_reports_the_nodes():
    topo = topology()
    dns = {ProbeKey(f"node/{topo.nodes[0].name}", "nodelocal", EXTERNAL): stats()}
    found = diagnose(Observations(topo, dns, NOW, not_probed=SKIPPED))
    assert not [f for f in found if f.rule == "local-not-probed"]
