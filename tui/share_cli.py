"""Shared viewing on the command line: which engine a run would share (the context's
key), attaching to it (`aksnet-top attach`, or by default when one runs), and the
viewer's app. Never imports textual itself: the viewer's app loads only to attach."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from probes import config as configmod
from probes.exitcodes import ArgumentParser, ExitCode
from probes.share.place import Ownership, Place, ShareError, context_key, place_for


def _err(msg: str) -> None:
    print(f"aksnet-top: {msg}", file=sys.stderr)


def key_parts(cfg: configmod.Config, demo: bool, env: dict[str, str] | None = None) -> list[object]:
    """What makes two runs the same engine: the demo's scenario and size, or the
    kubeconfig file(s), the context (the current one, resolved) and the ARM endpoint."""
    if demo:
        scenario = cfg.demo.scenario
        if os.path.exists(scenario):  # a scenario file: the same file, however it is named
            scenario = os.path.realpath(scenario)
        return ["demo", scenario, cfg.demo.nodes or 0]
    # lazy: the kubeconfig parser (yaml) only when a cluster run decides what it shares
    from probes.kube.kubeconfig import KubeconfigError, kubeconfig_paths, merge

    env = dict(os.environ) if env is None else env
    paths = [p for p in kubeconfig_paths(cfg.kube.kubeconfig, env) if p.is_file()]
    context = cfg.kube.context
    if not context and paths:
        try:
            context = merge(paths).current
        except (KubeconfigError, OSError):
            pass  # the run itself says what is wrong with the file
    return ["cluster", *(os.path.realpath(p) for p in paths), context, cfg.azure.arm_endpoint]


def place_of(cfg: configmod.Config, demo: bool) -> Place:
    return place_for(context_key(key_parts(cfg, demo)))


def attach_or_own(cfg: configmod.Config, demo: bool, no_attach: bool) -> socket.socket | Ownership | None:
    """A connection to the engine of this context if one runs (unless `no_attach`), else
    this run's ownership of the context's socket; None when it cannot share (said once)."""
    # lazy: the socket's placing only for the app (not check, lab, config)
    from probes.share.place import attach_or_own as take

    try:
        return take(place_of(cfg, demo), attach=not no_attach)
    except ShareError as e:
        _err(f"not sharing this run: {e}")
        return None


def is_connection(shared: object) -> bool:
    """Did `attach_or_own` attach (a connection to the running engine)?"""
    return isinstance(shared, socket.socket)


def host_for(owned: Ownership | None, banner: str, target: str) -> Any:
    """The owner's host on `owned` (None: this run does not share)."""
    if owned is None:
        return None
    # lazy: the host (the recorder's codec, msgspec) only when this run shares its engine
    from probes.share.host import Host

    return Host(owned, banner=banner, target=target)


def run_viewer(sock: socket.socket, cfg: configmod.Config) -> int:
    """The app on another run's engine: its own tabs, cursor and filters; no source."""
    # lazy: the viewer's side of the socket only to attach
    from probes.share.viewer import ViewerError, ViewerPublisher

    try:
        viewer = ViewerPublisher(sock, interval=cfg.ui.refresh_interval)
    except ViewerError as e:
        _err(str(e))
        return ExitCode.COULD_NOT_RUN
    app = build_viewer_app(viewer)
    try:
        app.theme = cfg.ui.theme
    except Exception:  # noqa: BLE001 - the owner's run already said what is wrong with it
        pass
    app.run()
    return int(app.return_code or 0)


def build_viewer_app(viewer: Any, *, panes: list[Any] | None = None, **kw: Any) -> Any:
    """The app on `viewer` (probes.share.viewer.ViewerPublisher): the owner's panes, no
    source, no recorder (the owner records). `kw`: the app's clocks (tests)."""
    # lazy: textual only when the viewer's screen opens
    from probes.engine.store import Store
    from tui.app import AksnetTopApp
    from tui.dns_pane import DnsPane
    from tui.egress_pane import EgressPane
    from tui.findings_pane import FindingsPane
    from tui.ingress_pane import IngressPane
    from tui.snat_pane import SnatPane

    banner = f"attached to pid {viewer.owner_pid}"
    if viewer.owner_banner:
        banner += f" · {viewer.owner_banner}"
    return AksnetTopApp(
        Store(),
        (),
        panes=panes if panes is not None else [DnsPane(), SnatPane(), EgressPane(), FindingsPane(), IngressPane()],
        publisher=viewer,
        share=viewer,
        refresh_interval=viewer.interval,
        banner=banner,
        **kw,
    )


def attach_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="aksnet-top attach",
        description="Open the app on the engine of an aksnet-top already running on this host against the same "
        "context (same kubeconfig, context and ARM endpoint; for the demo, the same scenario and nodes). "
        "It starts no watch, probe or Azure call of its own; tabs, cursor and filters are this screen's own.",
        epilog="With nothing running against that context it says so and exits 3. `aksnet-top` attaches by "
        "itself when an engine runs; `aksnet-top --no-attach` starts one of its own.",
    )
    p.add_argument("--demo", action="store_true", help="attach to the demo run")
    p.add_argument("--scenario", metavar="S", help="the demo run's scenario")
    p.add_argument("--nodes", type=int, metavar="N", help="the demo run's --nodes")
    p.add_argument("--kubeconfig", metavar="PATH")
    p.add_argument("--context", metavar="NAME")
    p.add_argument("--config", metavar="PATH", type=Path)
    return p


def run_attach(ns: argparse.Namespace, flags: dict[str, dict[str, Any]]) -> int:
    """`aksnet-top attach` (`ns` from `attach_parser`, `flags` its settings)."""
    if not ns.demo and (ns.scenario or ns.nodes):
        _err("--scenario and --nodes go with --demo")
        return ExitCode.USAGE
    try:
        cfg = configmod.load(flags=flags, path=ns.config)
    except configmod.ConfigError as e:
        _err(str(e))
        return ExitCode.USAGE
    # lazy: the socket's placing only to attach
    from probes.share.place import attach_only

    try:
        place = place_of(cfg, ns.demo)
        sock = attach_only(place)
    except ShareError as e:
        _err(str(e))
        return ExitCode.COULD_NOT_RUN
    if sock is None:
        what = f"the demo scenario {cfg.demo.scenario!r}" if ns.demo else "this context"
        _err(
            f"nothing to attach to: no aksnet-top runs against {what} on this host "
            f"(start one with `aksnet-top{' --demo' if ns.demo else ''}`)"
        )
        return ExitCode.COULD_NOT_RUN
    return run_viewer(sock, cfg)
