"""The evidence bundle: its files, and --redact-ids replacing the cluster's ids, IPs and
names by the same pseudonym in every file, the recordings' rows included."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tarfile
import zlib
from pathlib import Path

import pytest

from probes.record import bundle
from probes.record.reader import Recording
from tui import cli

SUB = "4b6c1f2e-8d3a-4e5f-9a7b-1c2d3e4f5a6b"


def _files(archive: Path, tmp: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    out: dict[str, bytes] = {}
    for p in tmp.rglob("*"):
        if p.is_file():
            rel = str(p.relative_to(tmp))
            if p.suffix == ".aksrec":
                db = sqlite3.connect(p)
                parts = [
                    zlib.decompress(b) for t in ("keyframes", "deltas") for (b,) in db.execute(f"SELECT blob FROM {t}")
                ]  # noqa: S608
                parts += [repr(r).encode() for r in db.execute("SELECT * FROM findings")]
                parts += [repr(r).encode() for r in db.execute("SELECT * FROM marks")]
                parts += [repr(r).encode() for r in db.execute("SELECT * FROM meta")]
                parts += [repr(r).encode() for r in db.execute("SELECT * FROM channels")]
                db.close()
                out[rel] = b"\n".join(parts)
            else:
                out[rel] = p.read_bytes()
    return out


def test_bundle_holds_the_window_and_a_summary(recorded, tmp_path):
    src = tmp_path / "recs"
    src.mkdir()
    shutil.copy(recorded[0], src / "a.aksrec")
    out = tmp_path / "b.tar.gz"
    rc = cli.main(["bundle", "--since", "1d", "-o", str(out), "--recording", str(src / "a.aksrec")])
    assert rc == 0 and out.exists()
    files = _files(out, tmp_path / "x")
    names = {Path(n).name for n in files}
    assert {n for n in names if not n.startswith(("node-", "pod-"))} == {
        "SUMMARY.md",
        "findings.json",
        "topology.json",
        "config.json",
        "versions.json",
        "a.aksrec",
    }
    assert any("/evidence/" in k and Path(k).name.startswith("node-") for k in files)
    summary = next(v for k, v in files.items() if k.endswith("SUMMARY.md")).decode()
    assert "CRITICAL" in summary and "nodelocal" in summary.lower() or "NodeLocal" in summary
    findings = json.loads(next(v for k, v in files.items() if k.endswith("findings.json")))
    assert any(f["rule"] == "nodelocal-down" and f["end"] is not None for f in findings)
    topo = json.loads(next(v for k, v in files.items() if k.endswith("topology.json")))
    assert len(topo["nodes"]) == 3
    # the bundled recording opens in replay and still holds the fault
    rec = Recording(next(p for p in (tmp_path / "x").rglob("*.aksrec")))
    assert rec.first_critical() is not None


def test_redact_ids_uses_one_pseudonym_per_value_in_every_file(recorded, tmp_path):
    rec = Recording(recorded[0])
    state = rec.state_at(rec.end)
    nodes = [v["name"] for k, v in state.items() if k.startswith("n\t")]
    ips = [v["internal_ip"] for k, v in state.items() if k.startswith("n\t")]
    rg = next(v["resource_group"] for k, v in state.items() if k.startswith("n\t"))
    rec.close()
    out = tmp_path / "r.tar.gz"
    bundle.make([recorded[0]], out, since=86400, redact_ids=True)
    files = _files(out, tmp_path / "y")
    every = b"\n".join(files.values())
    for secret in [SUB, *nodes, *ips, rg]:
        assert secret.lower().encode() not in every.lower(), secret
    # node 1 is the failing one: its pseudonym is the same in findings, topology and recording
    findings = json.loads(next(v for k, v in files.items() if k.endswith("findings.json")))
    subject = next(f["subject"] for f in findings if f["rule"] == "nodelocal-down")
    pseudo = subject.split("/", 1)[1]
    assert pseudo.startswith("node-")
    topo = json.loads(next(v for k, v in files.items() if k.endswith("topology.json")))
    assert pseudo in [n["name"] for n in topo["nodes"]]
    recording = next(v for k, v in files.items() if k.endswith(".aksrec"))
    assert pseudo.encode() in recording
    assert len({n["name"] for n in topo["nodes"]}) == 3  # three nodes, three pseudonyms


def test_pseudonyms_are_consistent_and_case_blind():
    p = bundle.Pseudonyms()
    p.learn("node", "aks-nodepool1-1234-vmss000001")
    p.learn("vmss", "aks-nodepool1-1234-vmss")
    a = p.text(
        f"/subscriptions/{SUB}/x/aks-nodepool1-1234-vmss/virtualMachines/1 on AKS-NODEPOOL1-1234-VMSS000001 10.224.0.5"
    )
    b = p.text(f"{SUB.upper()} aks-nodepool1-1234-vmss000001 10.224.0.5 10.224.0.6")
    assert a == "/subscriptions/00000000-0000-0000-0000-000000000001/x/vmss-1/virtualMachines/1 on node-1 192.0.2.1"
    assert b == "00000000-0000-0000-0000-000000000001 node-1 192.0.2.1 192.0.2.2"


def test_nothing_in_the_window_is_one_line(tmp_path, capsys):
    assert (
        cli.main(
            ["bundle", "--since", "5m", "--recording", str(tmp_path / "none.aksrec"), "-o", str(tmp_path / "o.tgz")]
        )
        == 3
    )
    assert "no recording overlaps" in capsys.readouterr().err
    assert cli.main(["bundle", "--since", "soon"]) == 4
    with pytest.raises(ValueError):
        bundle.parse_since("5 weeks")
