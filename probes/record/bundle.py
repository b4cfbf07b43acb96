"""The evidence bundle: one tar.gz a person (or support) opens first at SUMMARY.md —
the recordings cut to the window, the findings in it, the topology at its end, the
config in effect (redacted), the versions. `redact_ids`: subscription ids, IP addresses
and the cluster's names (nodes, scale sets, resource groups, pods) become pseudonyms,
the same one for the same value in every file, the recordings' rows included."""

from __future__ import annotations

import io
import json
import platform
import re
import sqlite3
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from probes.record import redact
from probes.record.codec import NODE
from probes.record.reader import Recording, RecordingError
from probes.record.schema import pack, unpack

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)"


_GENERIC = frozenset({"kubernetes", "kubernetes-internal"})  # ARM names every AKS cluster has


class BundleError(Exception):
    """Nothing to bundle, or the archive cannot be written; the message is for the user."""


def parse_since(text: str) -> float:
    """'30m', '2h', '90s', '1d' or a number of seconds -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise ValueError(f"--since {text!r}: expected a duration like 30m, 2h, 90s or 1d")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


class Pseudonyms:
    """One pseudonym per value (case-insensitive), numbered per kind in order of first use."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # lowercased name -> kind
        self.map: dict[tuple[str, str], str] = {}
        self._n: dict[str, int] = {}
        self._re: re.Pattern[str] | None = None

    def learn(self, kind: str, *values: str) -> None:
        for v in values:
            if v and len(v) >= 3 and v.lower() not in self.names:
                self.names[v.lower()] = kind
                self._re = None

    def learn_state(self, state: dict[str, Any]) -> None:
        head = state.get("kube") or {}
        self.learn("cluster", head.get("cluster", ""))
        for name, row in state.items():
            if name.startswith(NODE) and isinstance(row, dict):
                self.learn("node", row.get("name", ""))
                self.learn("vmss", row.get("vmss", ""))
                for k in ("resource_group", "network_resource_group", "network_name"):
                    self.learn("rg" if k != "network_name" else "vnet", row.get(k, ""))
        pods = state.get("pods") or {}
        for p in list(pods.get("coredns") or ()) + list((pods.get("nodelocal") or {}).values()):
            self.learn("pod", p.get("name", ""))
        snat = state.get("snat") or {}
        target = snat.get("target") or {}
        for k, kind in (
            ("node_resource_group", "rg"),
            ("cluster_resource_group", "rg"),
            ("cluster_name", "cluster"),
        ):
            self.learn(kind, target.get(k, ""))

    def learn_raw(self, kind: str, name: str, body: Any) -> None:
        """The names a raw body carries: a Kubernetes object's name and its node's, an ARM
        resource's name and its resource group (ids and addresses are patterns already)."""
        if not isinstance(body, dict):
            return
        meta = body.get("metadata")
        if isinstance(meta, dict):  # a service's name is the workload's, not the cluster's: kept
            if kind in ("pod", "node"):
                self.learn(kind, str(meta.get("name", "")))
            spec = body.get("spec")
            if isinstance(spec, dict):
                self.learn("node", str(spec.get("nodeName", "")))
            return
        rname = str(body.get("name", "")) or name
        if rname not in _GENERIC:
            self.learn(kind, rname)
        m = re.search(r"/resourceGroups/([^/]+)/", str(body.get("id", "")), re.I)
        if m:
            self.learn("rg", m.group(1))

    def _pattern(self) -> re.Pattern[str]:
        if self._re is None:
            names = sorted(self.names, key=len, reverse=True)
            alt = "|".join(re.escape(n) for n in names)
            parts = [f"(?P<guid>{_GUID})", f"(?P<ip>{_IPV4})"] + ([f"(?P<name>{alt})"] if alt else [])
            self._re = re.compile("|".join(parts), re.IGNORECASE)
        return self._re

    def _one(self, kind: str, value: str) -> str:
        key = (kind, value.lower())
        out = self.map.get(key)
        if out is None:
            n = self._n[kind] = self._n.get(kind, 0) + 1
            if kind == "guid":
                out = f"00000000-0000-0000-0000-{n:012d}"
            elif kind == "ip":
                out = f"192.0.2.{n}" if n < 255 else f"198.18.{n // 250}.{n % 250}"
            else:
                out = f"{kind}-{n}"
            self.map[key] = out
        return out

    def text(self, s: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group("guid"):
                return self._one("guid", m.group(0))
            if m.group("ip"):
                return self._one("ip", m.group(0))
            return self._one(self.names.get(m.group(0).lower(), "name"), m.group(0))

        return self._pattern().sub(sub, s)

    def tree(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.text(k) if isinstance(k, str) else k: self.tree(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.tree(v) for v in obj]
        return obj


def _cut(src: Recording, dst: Path, t0: float, ids: Pseudonyms | None) -> None:
    """`src` from the keyframe at or before `t0` on, into `dst` (optionally pseudonymised)."""
    with sqlite3.connect(f"file:{src.path}?mode=ro", uri=True) as s, sqlite3.connect(dst) as d:
        s.backup(d)
    db = sqlite3.connect(dst)
    try:
        kf = db.execute(
            "SELECT t, upto FROM keyframes WHERE t <= ? ORDER BY t DESC, rowid DESC LIMIT 1", (t0,)
        ).fetchone()
        if kf is not None:  # the keyframe holds every batch up to its `upto`
            db.execute("DELETE FROM keyframes WHERE t < ?", (kf[0],))
            db.execute("DELETE FROM deltas WHERE rowid <= ?", (kf[1],))
        db.execute("DELETE FROM marks WHERE t < ?", (t0,))
        db.execute('DELETE FROM findings WHERE "end" IS NOT NULL AND "end" < ?', (t0,))
        db.execute("DELETE FROM evidence WHERE finding NOT IN (SELECT id FROM findings)")
        if ids is not None:
            for table in ("keyframes", "deltas"):
                rows = db.execute(f"SELECT rowid, blob FROM {table}").fetchall()  # noqa: S608
                db.executemany(
                    f"UPDATE {table} SET blob = ? WHERE rowid = ?",  # noqa: S608
                    [(pack(ids.tree(unpack(b))), r) for r, b in rows],
                )
            rows = db.execute("SELECT id, key, subject, cause, body FROM findings").fetchall()
            db.executemany(
                "UPDATE findings SET key = ?, subject = ?, cause = ?, body = ? WHERE id = ?",
                [(ids.text(k), ids.text(a), ids.text(b), ids.text(c), i) for i, k, a, b, c in rows],
            )
            rows = db.execute("SELECT rowid, name, body FROM evidence").fetchall()
            db.executemany(
                "UPDATE evidence SET name = ?, body = ? WHERE rowid = ?",
                [(ids.text(n), pack(ids.tree(unpack(b))), r) for r, n, b in rows],
            )
            rows = db.execute("SELECT id, name FROM channels").fetchall()
            db.executemany("UPDATE channels SET name = ? WHERE id = ?", [(ids.text(n), i) for i, n in rows])
            rows = db.execute("SELECT rowid, text FROM marks").fetchall()
            db.executemany("UPDATE marks SET text = ? WHERE rowid = ?", [(ids.text(t), r) for r, t in rows])
            rows = db.execute("SELECT key, value FROM meta").fetchall()
            db.executemany("UPDATE meta SET value = ? WHERE key = ?", [(ids.text(v), k) for k, v in rows])
        db.commit()
        db.execute("VACUUM")
    finally:
        db.close()


def _topology(state: dict[str, Any]) -> dict[str, Any]:
    nodes = [v for k, v in sorted(state.items()) if k.startswith(NODE)]
    return {"kube": state.get("kube"), "nodes": nodes, "pods": state.get("pods"), "routes": state.get("routes")}


def _summary(window: tuple[float, float], recs: list[Recording], findings: list[dict[str, Any]], topo: Any) -> str:
    def when(t: float | None) -> str:
        return "still open" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))

    head = (topo.get("kube") or {}) if topo else {}
    lines = [
        "# aksnet-top evidence bundle",
        "",
        f"Window: {when(window[0])} → {when(window[1])} (local time)",
        f"Cluster: {head.get('cluster') or '?'} · {head.get('plugin') or '?'} · "
        f"{len(topo.get('nodes') or []) if topo else 0} nodes at the end of the window",
        f"Recordings: {len(recs)} ({', '.join(r.path.name for r in recs)})",
        "",
        "## Findings in the window, most severe first",
        "",
    ]
    order = {"critical": 0, "warning": 1, "info": 2}
    if not findings:
        lines.append("No findings.")
    for f in sorted(findings, key=lambda f: (order.get(f["severity"], 3), f["start"])):
        lines.append(
            f"- **{f['severity'].upper()}** {f['fault'] or ''} `{f['subject']}`: {f['cause']} "
            f"(from {when(f['start'])} to {when(f['end'])})"
        )
    lines += [
        "",
        "## Files",
        "",
        "- `findings.json`: every finding open in the window, with its evidence and next step",
        "- `evidence/<n>-<rule>/<kind>-<name>.json`: the raw Kubernetes objects and ARM bodies behind finding n "
        "(its `evidence_dir` in findings.json), as read when it started, redacted",
        "- `topology.json`: the nodes, pods, services and routes at the end of the window",
        "- `recordings/*.aksrec`: the flight recordings from the window; open one with "
        "`aksnet-top replay FILE` (no cluster or network needed)",
        "- `config.json`: the configuration in effect (credentials never included)",
        "- `versions.json`: aksnet-top, Python, platform",
        "",
    ]
    return "\n".join(lines)


def make(
    paths: Iterable[Path],
    out: Path,
    *,
    since: float,
    config: Any = None,
    version: str = "",
    redact_ids: bool = False,
    now: Callable[[], float] = time.time,
) -> Path:
    t1 = now()
    t0 = t1 - since
    recs: list[Recording] = []
    for p in paths:
        try:
            r = Recording(p)
        except RecordingError:
            continue  # a run still writing its first rows, or a foreign file: not evidence
        if r.end >= t0 and r.start <= t1:
            recs.append(r)
        else:
            r.close()
    if not recs:
        raise BundleError(f"no recording overlaps the last {since:g} s")
    try:
        ids = Pseudonyms() if redact_ids else None
        last = max(recs, key=lambda r: r.end)
        end_state = dict(last.state_at(min(t1, last.end)))
        if ids is not None:
            for r in recs:
                ids.learn_state(dict(r.state_at(r.end)))
        topo = _topology(end_state)
        spans = [(r, f) for r in recs for f in r.findings_in(t0, t1)]
        raws = [r.evidence(f) for r, f in spans]  # the raw bodies behind each finding
        if ids is not None:
            for objects in raws:
                for kind, name, body in objects:
                    ids.learn_raw(kind, name, body)
        findings = [
            {
                "rule": f.rule,
                "fault": f.fault,
                "severity": f.severity,
                "subject": f.subject,
                "cause": f.cause,
                "start": f.start,
                "end": f.end,
                "finding": json.loads(f.body),
                "recording": r.path.name,
                "evidence_dir": f"evidence/{i + 1}-{f.rule}" if raws[i] else None,
            }
            for i, (r, f) in enumerate(spans)
        ]
        evidence: dict[str, str] = {}
        for i, (objects, (_r, f)) in enumerate(zip(raws, spans)):
            for kind, name, body in objects:
                if ids is not None:
                    name, body = ids.text(name), ids.tree(body)
                fname = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{kind}-{name}")[:120]
                evidence[f"evidence/{i + 1}-{f.rule}/{fname}.json"] = json.dumps(body, indent=2, default=str)
        cfg = redact.scrub(msgspec.to_builtins(config, enc_hook=repr)) if config is not None else {}
        versions = {
            "aksnet-top": version,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "sqlite": sqlite3.sqlite_version,
            "recording_format": last.meta.get("format", ""),
        }
        if ids is not None:
            topo, findings, cfg = ids.tree(topo), ids.tree(findings), ids.tree(cfg)
        docs = {
            "SUMMARY.md": _summary((t0, t1), recs, findings, topo),
            "findings.json": json.dumps(findings, indent=2),
            "topology.json": json.dumps(topo, indent=2),
            "config.json": json.dumps(cfg, indent=2),
            "versions.json": json.dumps(versions, indent=2),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp, tarfile.open(out, "w:gz") as tar:
            root = out.name.split(".")[0] or "bundle"
            for name, text in {**docs, **evidence}.items():
                data = text.encode()
                info = tarfile.TarInfo(f"{root}/{name}")
                info.size, info.mtime, info.mode = len(data), int(t1), 0o600
                tar.addfile(info, io.BytesIO(data))
            for r in recs:
                cut = Path(tmp) / (ids.text(r.path.name) if ids is not None else r.path.name)
                _cut(r, cut, t0, ids)
                tar.add(cut, arcname=f"{root}/recordings/{cut.name}")
        out.chmod(0o600)
        return out
    except (OSError, sqlite3.Error, tarfile.TarError) as e:
        raise BundleError(f"cannot write the bundle {out}: {e}") from e
    finally:
        for r in recs:
            r.close()
