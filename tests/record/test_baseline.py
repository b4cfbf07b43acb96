"""Before/after on the `upgrade` scenario: the baseline is the cluster before the node pool
upgrade, the second check runs after it (the same scenario with its timeline played at
start-up). The comparison names the replaced node of nodepool1 and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

import probes.lab
from probes.record import baseline
from tui import cli


def _scenarios(tmp: Path) -> tuple[Path, Path]:
    doc = yaml.safe_load((Path(probes.lab.__file__).parent / "scenarios" / "upgrade.yaml").read_text())
    before = {k: v for k, v in doc.items() if k != "timeline"}
    after = dict(doc)
    # the upgrade's events, in their order, within the first second and a half
    # (after the demo's agents started: they are built from the nodes the lab starts with)
    after["timeline"] = [{**e, "at": f"{2.5 + 0.4 * i:.1f}s"} for i, e in enumerate(doc["timeline"])]
    a, b = tmp / "before.yaml", tmp / "after.yaml"
    a.write_text(yaml.safe_dump(before))
    b.write_text(yaml.safe_dump(after))
    return a, b


def test_baseline_after_an_upgrade_names_the_replaced_nodes_only(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    before, after = _scenarios(tmp_path)
    base = tmp_path / "base.json"
    common = ["check", "--demo", "--cycles", "4", "--interval", "1.5"]
    rc = cli.main([*common, "--scenario", str(before), "--save-baseline", str(base)])
    assert rc in (0, 1), capsys.readouterr()
    assert baseline.load(base)["observations"]["topology"]["nodes"] == 5
    capsys.readouterr()
    rc = cli.main([*common, "--scenario", str(after), "--baseline", str(base), "--output", "json"])
    report = json.loads(capsys.readouterr().out)
    diff = report["baseline"]
    (left, joined) = (diff["replaced"]["nodepool1"]["left"], diff["replaced"]["nodepool1"]["joined"])
    assert [n[-10:] for n in left] == ["vmss000000"] and [n[-10:] for n in joined] == ["vmss000003"]
    assert list(diff["replaced"]) == ["nodepool1"]
    assert diff["changes"] == [f"pool nodepool1: nodes replaced: {left[0]} → {joined[0]}"], diff
    # new findings are about the replaced nodes only (the old node's route left behind, the new node)
    assert all(left[0] in f["subject"] or joined[0] in f["subject"] for f in diff["new_findings"]), diff
    assert rc == report["exit_code"] and rc in (0, 1)
    # the recorder kept both runs
    assert len(list((tmp_path / "state" / "aksnet-top" / "recordings").glob("*.aksrec"))) == 2


def test_compare_reports_latency_loss_egress_and_new_findings():
    def rep(p50: float, loss: float, egress: str, findings: list[dict]) -> dict:
        return {
            "findings": findings,
            "observations": {
                "topology": {
                    "node_list": [],
                    "pools": [{"name": "p", "kubelet_versions": ["v1.30.6"], "vm_size": "x"}],
                },
                "dns": [
                    {
                        "vantage": "local",
                        "resolver": "kube-dns",
                        "name": "n",
                        "type": "A",
                        "health": "good",
                        "p50_ms": p50,
                        "loss_pct": loss,
                    }
                ],
                "egress": [
                    {"vantage": "local", "target": "mcr.microsoft.com:443", "health": egress, "last_outcome": egress}
                ],
                "snat": {"allocation": {"tier": "1024", "ports_per_node": 1024}},
                "routes": {},
            },
        }

    crit = {"rule": "r", "subject": "node/x", "severity": "critical", "cause": "c"}
    same = baseline.compare(rep(1.0, 0, "good", [crit]), rep(5.0, 5, "good", [crit]))
    assert same.lines == [] and same.new_findings == []
    d = baseline.compare(rep(1.0, 0, "good", []), rep(40.0, 20, "failing", [crit]))
    assert d.lines == [
        "DNS local kube-dns n A: p50 1.0 → 40.0 ms",
        "DNS local kube-dns n A: loss 0% → 20%",
        "egress local mcr.microsoft.com:443: good → failing (failing)",
    ]
    assert d.new_findings == [crit]


def test_a_replaced_nodes_own_probes_are_said_by_the_replacement():
    """The node that left during the upgrade answered slowly while it was drained: that is
    the upgrade, already said as "nodes replaced", not a resolver's latency change."""

    def rep(nodes: list[str], p50: dict[str, float]) -> dict:
        return {
            "findings": [],
            "observations": {
                "topology": {"node_list": [{"name": n, "pool": "p"} for n in nodes], "pools": []},
                "dns": [
                    {"vantage": v, "resolver": "kube-dns", "name": "n", "type": "A", "health": "good", "p50_ms": ms}
                    for v, ms in p50.items()
                ],
                "egress": [],
                "routes": {},
            },
        }

    before = rep(["a", "b"], {"node/a": 1.0, "node/b": 1.0})
    after = rep(["b", "c"], {"node/a": 35.0, "node/b": 40.0})
    assert baseline.compare(before, after).lines == [
        "pool p: nodes replaced: a → c",
        "DNS node/b kube-dns n A: p50 1.0 → 40.0 ms",  # a node that stayed still counts
    ]


def test_a_bad_baseline_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "b.json"
    bad.write_text("{}")
    assert cli.main(["check", "--demo", "--baseline", str(bad), "--no-record"]) == 4
    assert "not a baseline" in capsys.readouterr().err
