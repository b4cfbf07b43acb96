"""The `aksnet-top` command line.

Sub-commands that must start fast (`lab`, `config`) never import textual; the app's
modules are imported only when the app is about to run (for `--demo`, while the demo's
lab process starts). Every command exits with probes.exitcodes.ExitCode; usage and
configuration errors exit 4.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from probes import config as configmod
from probes.exitcodes import ArgumentParser, ExitCode
from probes.memtune import tune_malloc

EXIT_OK, EXIT_USAGE, EXIT_FAILED = ExitCode.HEALTHY, ExitCode.USAGE, ExitCode.COULD_NOT_RUN


def version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is written)."""
    # lazy: importlib.metadata (~10 ms, email) only for --version
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("aksnet-top")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _err(msg: str) -> None:
    print(f"aksnet-top: {msg}", file=sys.stderr)


def app_parser() -> argparse.ArgumentParser:
    # lazy: textwrap only to lay out --help
    import textwrap

    # lazy: the scenario list (and its textwrap) only when the app's parser is built
    from probes.scenarios import help_text

    other = (
        "Other commands: `aksnet-top check --help` (headless health check for pipelines), `aksnet-top lab --help` "
        "(run the simulated cluster for any client), `aksnet-top config` (the effective configuration as TOML), "
        "`aksnet-top agent --help` (the per-node agent: run, manifest, install, uninstall), "
        "`aksnet-top attach --help` (open a second screen on a running aksnet-top's engine)."
    )
    p = ArgumentParser(
        prog="aksnet-top",
        description="Terminal dashboard for AKS networking.\nRead-only: it never writes to the cluster or to Azure.",
        epilog="Built-in demo scenarios (--demo --scenario S):\n"
        + help_text()
        + "\n\n"
        + textwrap.fill(other, 78, break_on_hyphens=False),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--demo", action="store_true", help="run on the embedded demo cluster (no kubeconfig needed)")
    p.add_argument(
        "--scenario",
        metavar="S",
        help="demo scenario: a built-in name (listed below) or a scenario file",
    )
    p.add_argument("--nodes", type=int, metavar="N", help="demo: scale the scenario to N nodes (up to 5000)")
    p.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current context)")
    p.add_argument(
        "--config", metavar="PATH", type=Path, help="config file (default: ~/.config/aksnet-top/config.toml)"
    )
    p.add_argument("--no-record", action="store_true", help="do not keep this run's flight recording")
    p.add_argument(
        "--no-attach",
        action="store_true",
        help="start an engine of its own even if an aksnet-top already runs against this context on this host "
        "(by default a second one attaches to the first one's engine)",
    )
    _debug_flag(p)
    p.add_argument("--version", action="version", version=f"aksnet-top {version()}")
    return p


def _debug_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--debug",
        action="store_true",
        help="write every log record (ours, urllib3's, the Azure SDK's) to a file under "
        "$XDG_STATE_HOME/aksnet-top (default ~/.local/state/aksnet-top) and say where; "
        "credentials in URLs are redacted",
    )


def _logging(prog: str, ns: argparse.Namespace, terminal: bool) -> str | None:
    """Set up logging (probes.logsetup); returns the debug log's path, or raises LogSetupError."""
    # lazy: logging (~5 ms) only for the commands that run sources
    from probes import logsetup

    path = logsetup.setup(prog, terminal=terminal, debug=ns.debug)
    if path is not None:
        _err(f"debug log: {path}")
    return None if path is None else str(path)


def lab_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="aksnet-top lab", description="Run the simulated AKS cluster's API server in the foreground until Ctrl-C."
    )
    p.add_argument(
        "--scenario", default="healthy", metavar="S", help="built-in scenario name or scenario file (default: healthy)"
    )
    p.add_argument("--nodes", type=int, metavar="N", help="scale the scenario to N nodes (up to 5000)")
    p.add_argument(
        "--kubeconfig-out", required=True, metavar="PATH", help="where to write a kubeconfig for kubectl and aksnet-top"
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="listen port (default: any free port)")
    p.add_argument("--tls", action="store_true", help="serve HTTPS with a throwaway CA (written into the kubeconfig)")
    p.add_argument("--token", metavar="T", help="require this bearer token")
    return p


def _flags(ns: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for attr, (sec, key) in {
        "kubeconfig": ("kube", "kubeconfig"),
        "context": ("kube", "context"),
        "scenario": ("demo", "scenario"),
        "nodes": ("demo", "nodes"),
        "agent_budget": ("agents", "check_budget"),
    }.items():
        value = getattr(ns, attr, None)
        if value is not None:
            out.setdefault(sec, {})[key] = value
    return out


def run_lab(argv: list[str]) -> int:
    ns = lab_parser().parse_args(argv)
    if ns.nodes is not None and not 1 <= ns.nodes <= 5000:
        _err("--nodes must be from 1 to 5000")
        return EXIT_USAGE
    if not 0 <= ns.port <= 65535:
        _err(f"--port must be from 0 (any free port) to 65535, got {ns.port}")
        return EXIT_USAGE
    # lazy: the lab server loads only for `aksnet-top lab`
    from probes.demo import serve_lab

    return int(
        serve_lab(
            ns.scenario,
            nodes=ns.nodes,
            kubeconfig_out=ns.kubeconfig_out,
            host=ns.host,
            port=ns.port,
            tls=ns.tls,
            token=ns.token,
        )
    )


def check_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="aksnet-top check",
        description="One headless run: list the cluster, probe for N cycles, print findings.",
        epilog="Timing: the run lists the cluster, probes DNS and egress from here, reads every per-node "
        "agent once through the API server and reads ARM (SNAT metrics, NSGs, routes) meanwhile. By default "
        "each next cycle starts as soon as the last one's results are in (--interval N: N s apart). Each "
        "agent's one read asks it to probe its rows --cycles times at once and is answered within 2 s; the "
        "reads go out at --agent-budget per second (50 agents at 20/s: ~2.5 s). A target that does not answer "
        "holds its row for its timeout (dns.timeout, egress.timeout, https.timeout), and a recorded run with "
        "findings waits up to 3 s for their evidence. --debug logs when each phase ended.",
    )
    p.add_argument("--demo", action="store_true", help="check the embedded demo cluster")
    p.add_argument("--scenario", metavar="S", help="demo scenario (built-in name or file)")
    p.add_argument("--nodes", type=int, metavar="N", help="demo: scale the scenario to N nodes")
    p.add_argument("--kubeconfig", metavar="PATH")
    p.add_argument("--context", metavar="NAME")
    p.add_argument("--config", metavar="PATH", type=Path)
    p.add_argument("--cycles", type=int, default=2, help="probe cycles before the verdict (default 2)")
    p.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="seconds between probe cycles (default: back to back, each cycle as soon as the last one's "
        "results are in, at most 1 s apart; the app's cadence is dns.interval / egress.interval)",
    )
    p.add_argument("--output", choices=("table", "json"), default="table")
    p.add_argument(
        "--agent-budget",
        type=float,
        metavar="RPS",
        help="API requests per second for reading the per-node agents (default: agents.check_budget, 20)",
    )
    p.add_argument("--no-record", action="store_true", help="do not keep this run's flight recording")
    # lazy: the flight recorder's flags live with its commands
    from tui.record_cli import add_baseline_flags

    add_baseline_flags(p)
    _debug_flag(p)
    return p


def run_check(argv: list[str]) -> int:
    ns = check_parser().parse_args(argv)
    # lazy: probes.logsetup (logging, ~5 ms) only for the commands that run sources
    from probes.logsetup import LogSetupError

    try:  # our warnings one line each on stderr; the libraries' only in the --debug log
        _logging("aksnet-top check", ns, terminal=True)
    except LogSetupError as e:
        _err(str(e))
        return EXIT_FAILED
    # lazy: the run's moments for the --debug log, with the logging
    from probes.phases import Phases

    phases = Phases()
    phases.mark("logging set up")
    if not 1 <= ns.cycles <= 100:
        _err("--cycles must be from 1 to 100")
        return EXIT_USAGE
    if ns.interval is not None and not 0.1 <= ns.interval <= 300:
        _err("--interval must be from 0.1 to 300 seconds")
        return EXIT_USAGE
    if not ns.demo and (ns.scenario or ns.nodes):
        _err("--scenario and --nodes go with --demo")
        return EXIT_USAGE
    try:
        cfg = configmod.load(flags=_flags(ns), path=ns.config)
    except configmod.ConfigError as e:
        _err(str(e))
        return EXIT_USAGE
    launching = None
    if ns.demo:
        # lazy: the demo only for `check --demo`
        from probes.demo import DemoError, launch_for

        try:  # the lab first: its process starts while this one imports the engine
            launching = launch_for(cfg)
        except DemoError as e:
            _err(f"check could not run: {e}")
            return EXIT_FAILED
        phases.mark("lab process launched")
    try:
        return _run_check(ns, cfg, launching, phases)
    finally:
        if launching is not None:
            launching.stop(wait=False)  # the lab ends itself on EOF (a no-op once check stopped it)


def _run_check(ns: argparse.Namespace, cfg: configmod.Config, launching: Any, phases: Any) -> int:
    # lazy: each sub-command loads its own modules: `import tui.cli` stays at probes.config
    from probes import check

    if not ns.demo:
        # lazy: probes.kube.connect (dataclasses, kubeconfig) only to check the kubeconfig before a run
        from probes.kube.connect import KubeConnectError, load

        try:
            load(cfg.kube.kubeconfig, cfg.kube.context)
        except KubeConnectError as e:
            _err(str(e))
            return int(check.Exit.COULD_NOT_RUN)
    # lazy: the demo's error (its module is loaded by now for --demo, light otherwise)
    from probes.demo import DemoError

    # lazy: the recorder's command-line side only when check runs
    from tui.record_cli import apply_baseline, finish_baseline, load_baseline, recorder_for

    before, failed = load_baseline(ns)
    if failed is not None:
        return failed
    recorder = recorder_for(cfg, "check", ns.no_record, cfg.kube.context)
    try:
        result = check.run(
            cfg,
            demo=ns.demo,
            cycles=ns.cycles,
            interval=ns.interval,
            recorder=recorder,
            phases=phases,
            launching=launching,
        )
    except DemoError as e:  # unknown scenario, bad file (4); the lab process failed (3): one line
        _err(f"check could not run: {e}")
        return EXIT_USAGE if e.usage else EXIT_FAILED
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        _err(f"check could not run: {e}")
        return EXIT_FAILED
    finally:
        if recorder is not None:
            recorder.close()
            phases.mark("flight recording closed")
    diff = apply_baseline(before, result)
    try:
        if ns.output == "json":
            # lazy: json only for `check --output json`
            import json

            print(json.dumps(result.report, indent=2))
        else:
            check.render_table(result)
        failed = finish_baseline(ns, result, diff, ns.output != "json")
        if failed is not None:
            return failed
        sys.stdout.flush()
        phases.mark("report written")
    except BrokenPipeError:  # `aksnet-top check | head`: the reader left; the verdict stands
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return int(result.exit)


def run_config(argv: list[str]) -> int:
    p = ArgumentParser(
        prog="aksnet-top config", description="Print the effective configuration and where each key can be set."
    )
    p.add_argument("--config", metavar="PATH", type=Path)
    ns = p.parse_args(argv)
    try:
        cfg = configmod.load(path=ns.config)
    except configmod.ConfigError as e:
        _err(str(e))
        return EXIT_USAGE
    # lazy: json, math only for `aksnet-top config`
    from probes.configdump import render

    print(render(cfg, ns.config), end="")
    return EXIT_OK


def run_app(argv: list[str]) -> int:
    ns = app_parser().parse_args(argv)
    # lazy: probes.logsetup (logging, ~5 ms) only for the commands that run sources
    from probes.logsetup import LogSetupError

    try:  # the screen is the app's: nothing on stderr, the libraries' records only in the --debug log
        debug_log = _logging("aksnet-top", ns, terminal=False)
    except LogSetupError as e:
        _err(str(e))
        return EXIT_FAILED
    try:
        cfg = configmod.load(flags=_flags(ns), path=ns.config)
    except configmod.ConfigError as e:
        _err(str(e))
        return EXIT_USAGE
    if not ns.demo and (ns.scenario or ns.nodes):
        _err("--scenario and --nodes go with --demo")
        return EXIT_USAGE

    # lazy: shared viewing's command-line side only for the app
    from tui import share_cli

    shared = share_cli.attach_or_own(cfg, ns.demo, ns.no_attach)
    if share_cli.is_connection(shared):  # an engine runs against this context: view it, start nothing
        return share_cli.run_viewer(shared, cfg)  # type: ignore[arg-type]
    try:
        return _run_engine(ns, cfg, debug_log, shared)
    finally:
        if isinstance(shared, share_cli.Ownership):
            shared.release()  # the host has released it already, unless the app never started


def _run_engine(ns: argparse.Namespace, cfg: configmod.Config, debug_log: str | None, owned: Any) -> int:
    """The app with an engine of its own (sources, probes, publisher), shared through
    `owned` (probes.share.place.Ownership, or None: not shared)."""
    # lazy: shared viewing's command-line side only for the app
    from tui import share_cli

    launching = None
    kubeconfig, context, banner = cfg.kube.kubeconfig, cfg.kube.context, ""
    if ns.demo:
        # lazy: the demo (its lab process) only for --demo
        from probes import demo as demomod

        try:  # the lab starts in its own process while this one imports the app
            launching = demomod.launch(
                cfg.demo.scenario,
                nodes=cfg.demo.nodes or None,
                dns=cfg.dns,
                egress=cfg.egress,
                echo_url=cfg.agents.echo_url,
            )
        except demomod.DemoError as e:
            _err(f"cannot start the demo cluster: {e}")
            return EXIT_FAILED
    else:
        # lazy: probes.kube.connect (dataclasses, kubeconfig) only to check the kubeconfig before a run
        from probes.kube.connect import KubeConnectError, load

        try:  # fail fast, before the screen opens, on what only the user can fix
            load(kubeconfig, context)
        except KubeConnectError as e:
            _err(str(e))
            return EXIT_FAILED

    demo = None
    try:
        # lazy: textual is not loaded for check/lab/config/agent: the app and its sources only for the top view
        from probes.engine.store import Store
        from probes.kube.source import KubeSource
        from tui.app import AksnetTopApp
        from tui.features import FeatureError, build_all, run_cleanups

        endpoints = None
        if launching is not None:
            try:
                demo = launching.ready(agents=False)  # the agents' `local` vantage lands a moment later
            except demomod.DemoError as e:  # unknown scenario, bad file: one line, no traceback
                _err(f"cannot start the demo cluster: {e}")
                return EXIT_USAGE if e.usage else EXIT_FAILED
            kubeconfig, context, endpoints = demo.kubeconfig, "", demo.endpoints
            banner = f"demo: {cfg.demo.scenario}"
        store = Store()
        kube = dataclasses.replace(cfg.kube, kubeconfig=kubeconfig, context=context)
        source = KubeSource(store, kube)
        try:
            features = build_all(cfg, store, endpoints, kube)
        except FeatureError as e:
            _err(str(e))
            return EXIT_USAGE
        # lazy: the recorder's command-line side only when the app runs
        from tui.record_cli import recorder_for

        recorder = recorder_for(cfg, "app", ns.no_record, context or banner)
        if recorder is not None:
            # lazy: the evidence fetcher only for a run that records
            from probes.record.evidence import for_run

            recorder.evidence = for_run(source, features.feeds.get("snat"))
        app = AksnetTopApp(
            store,
            [source, *features.sources],
            panes=features.panes,
            **features.feeds,
            refresh_interval=cfg.ui.refresh_interval,
            banner=banner,
            recorder=recorder,
            share=share_cli.host_for(owned, banner, context),
        )
        try:
            app.theme = cfg.ui.theme
        except Exception:  # named now, before the screen opens and hides it: a configuration error
            known = ", ".join(sorted(app.available_themes))
            _err(f"ui.theme {cfg.ui.theme!r} is not a known theme (known: {known})")
            run_cleanups(features)
            return EXIT_USAGE
        try:
            app.run()
        finally:
            run_cleanups(features)
    finally:  # also on a crash; on SIGTERM or SIGKILL the lab sees its stdin close and ends itself
        if demo is not None:
            demo.stop()
        elif launching is not None:
            launching.stop()
    if debug_log:
        _err(f"debug log: {debug_log}")  # again: the screen covered the first time it was said
    return app.return_code or EXIT_OK


def run_agent(argv: list[str]) -> int:
    """`aksnet-top agent run|manifest|install|uninstall`: the per-node agent (never loads textual)."""
    # lazy: the agent's CLI (manifest, install) only for `aksnet-top agent`
    from probes.agent.cli import main as agent_main

    return agent_main(argv)


def run_attach(argv: list[str]) -> int:
    """`aksnet-top attach`: a second screen on the engine of a running aksnet-top."""
    # lazy: shared viewing only for `attach`
    from tui.share_cli import attach_parser
    from tui.share_cli import run_attach as attach_main

    ns = attach_parser().parse_args(argv)
    return attach_main(ns, _flags(ns))


def run_replay(argv: list[str]) -> int:
    """`aksnet-top replay [FILE]`: a flight recording in the app, read-only."""
    # lazy: the recorder's commands only for `replay`
    from tui.record_cli import run_replay as replay_main

    return replay_main(argv)


def run_bundle(argv: list[str]) -> int:
    """`aksnet-top bundle`: the evidence archive of a window of the recordings."""
    # lazy: the bundle only for `aksnet-top bundle`
    from tui.record_cli import run_bundle as bundle_main

    return bundle_main(argv)


COMMANDS = {
    "lab": run_lab,
    "config": run_config,
    "check": run_check,
    "agent": run_agent,
    "replay": run_replay,
    "bundle": run_bundle,
    "attach": run_attach,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in COMMANDS:
            return COMMANDS[argv[0]](argv[1:])
        return run_app(argv)
    except KeyboardInterrupt:
        return 130


def console_main() -> None:
    """The `aksnet-top` command: main(), then a quick exit. Every source, service and
    child has been stopped by then; tearing down the interpreter (the Kubernetes and Azure
    SDKs' modules, the collector) would only add a third of a second to every `check`
    in a pipeline. Before anything runs, the one process-wide malloc setting
    (probes.memtune: large bodies back to the kernel when freed)."""
    tune_malloc()
    try:
        rc = main()
    except BrokenPipeError:  # `aksnet-top config | head`: the reader left; nothing to say
        rc = ExitCode.HEALTHY
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(rc)


if __name__ == "__main__":  # `python -m tui.cli`, as the benchmarks run it: the same setting first
    tune_malloc()
    sys.exit(main())
