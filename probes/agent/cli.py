"""``aksnet-top agent {run,manifest,install,uninstall}``: the per-node agent's command line.

``run`` starts the agent (inside the DaemonSet pod). The other three deploy it:
``manifest`` prints the YAML and reads nothing from a cluster (unless ``--from-cluster``,
which only reads); ``install``/``uninstall`` are the only commands of aksnet-top that
write to a cluster, and they ask first (``--yes`` for scripts; without a terminal and
without ``--yes`` they refuse).

Exit codes (probes.exitcodes): 0 done, 3 could not run (one line on stderr, never a
traceback), 4 usage (bad flag, not confirmed). Never imports textual.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from probes.exitcodes import EPILOG, ArgumentParser, ExitCode

from .install import USER_AGENT, InstallError, discover, install, uninstall
from .manifest import AGENT_NAME, AGENT_NAMESPACE, AGENT_PORT, MODES, STOCK_IMAGE, render, to_yaml
from .pyz import PyzError
from .pyz import build as build_pyz

__all__ = ["main", "raise_net_raw", "EXIT_OK", "EXIT_USAGE", "EXIT_FAILED"]

EXIT_OK, EXIT_USAGE, EXIT_FAILED = ExitCode.HEALTHY, ExitCode.USAGE, ExitCode.COULD_NOT_RUN
PROG = "aksnet-top agent"


def _err(msg: str) -> None:
    print(f"aksnet-top: {msg}", file=sys.stderr)


class _Parser(ArgumentParser):
    """argparse (usage errors 4, exit codes in --help), but errors return to main()
    instead of exiting the interpreter."""

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _kube_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kubeconfig", metavar="PATH", default="", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)"
    )
    p.add_argument("--context", metavar="NAME", default="", help="kubeconfig context (default: the current context)")


def _render_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--image",
        metavar="IMG",
        help=f"run your own build of the Dockerfile's image (e.g. myacr.azurecr.io/aksnet-top:0.1.0): SYN-mode "
        f"egress checks with NET_RAW. Default: the stock {STOCK_IMAGE} runs the agent as a zipapp from a "
        "ConfigMap, in connect mode, with no capability and nothing to build",
    )
    p.add_argument(
        "--namespace",
        default=AGENT_NAMESPACE,
        metavar="NS",
        help=f"namespace for the agent (default {AGENT_NAMESPACE})",
    )
    p.add_argument(
        "--mode",
        default=None,
        choices=MODES,
        help="egress checks: auto (SYN when raw sockets are allowed, else connect), connect, syn (default: auto "
        "with --image; the stock image's agent always uses connect)",
    )
    p.add_argument("--interval", type=float, metavar="SECONDS", help="probe interval (default: the agent's)")
    p.add_argument("--kube-dns", metavar="IP", help="kube-dns ClusterIP the agent queries")
    p.add_argument(
        "--nodelocal",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether NodeLocal DNS runs on the nodes (default: read from the cluster by install and "
        "--from-cluster; else the agent looks for its address in the pod's resolv.conf)",
    )
    p.add_argument(
        "--nodelocal-ip",
        metavar="IP",
        help="NodeLocal DNS's address (default: the node-local-dns pods' -localip, read from the cluster; else "
        "169.254.20.10)",
    )
    p.add_argument(
        "--localdns",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether the nodes run AKS LocalDNS (169.254.10.10/.11) (default: from the nodes' labels when "
        "every node agrees; else each agent sees it in its resolv.conf)",
    )
    p.add_argument("--apiserver", metavar="HOST:PORT", help="API server endpoint the agent checks egress to")
    p.add_argument(
        "--target", action="append", default=[], metavar="HOST:PORT", help="extra egress target (repeatable)"
    )
    p.add_argument(
        "--echo-url",
        metavar="URL",
        default=os.environ.get("AKSNET_AGENTS_ECHO_URL", ""),
        help="an echo endpoint (answers with the caller's IP) the agents GET every minute: each node's egress IP "
        "(default: $AKSNET_AGENTS_ECHO_URL, i.e. agents.echo_url; off when empty)",
    )
    p.add_argument(
        "--reader-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="bind the readers' Role (pods get/list/watch, pods/proxy get) to this group (repeatable; "
        "Entra ID clusters: the group's object id)",
    )
    p.add_argument(
        "--allow-from",
        action="append",
        default=[],
        metavar="CIDR",
        help="also admit this CIDR to the agent's port (repeatable): API Server VNet Integration's subnet, "
        "nodes where the API server's tunnel runs on the host network, a Prometheus scraper. Default: only "
        "kube-system's konnectivity-agent pods, the API server's path into the pod network on AKS",
    )
    p.add_argument(
        "--pull-secret", metavar="NAME", help="imagePullSecret in the namespace (not needed with an attached ACR)"
    )
    p.add_argument(
        "--prometheus",
        action="store_true",
        help="annotate the agent's pods for Prometheus scraping (prometheus.io/scrape, port, path) and admit "
        "Azure Managed Prometheus's collector (kube-system ama-metrics pods) to the port",
    )
    p.add_argument(
        "--podmonitor",
        action="store_true",
        help="also create an azmonitoring.coreos.com/v1 PodMonitor for Azure Managed Prometheus (implies "
        "--prometheus; the cluster needs the metrics add-on)",
    )
    p.add_argument(
        "--from-cluster",
        action="store_true",
        help="fill --kube-dns, --nodelocal, --nodelocal-ip, --localdns and --apiserver from the cluster "
        "(read-only GETs; always done by install); flags given win",
    )
    _kube_flags(p)


def _parsers() -> dict[str, argparse.ArgumentParser]:
    m = _Parser(
        prog=f"{PROG} manifest",
        description="Print the agent's Kubernetes objects as YAML (for kubectl apply "
        "-f - or GitOps). Reads nothing from a cluster unless --from-cluster is given.",
    )
    _render_flags(m)
    i = _Parser(
        prog=f"{PROG} install",
        description="Create or update the agent's objects in the cluster. Writes to "
        "the cluster: asks first, or pass --yes.",
    )
    _render_flags(i)
    i.add_argument(
        "--dry-run", action="store_true", help="server-side dry run: checked by the API server, nothing stored"
    )
    i.add_argument("--yes", action="store_true", help="do not ask (required without a terminal)")
    u = _Parser(
        prog=f"{PROG} uninstall",
        description="Delete the agent's objects (and its namespace if aksnet-top "
        "created it). Writes to the cluster: asks first, or pass --yes.",
    )
    u.add_argument(
        "--namespace", default=AGENT_NAMESPACE, metavar="NS", help=f"the agent's namespace (default {AGENT_NAMESPACE})"
    )
    _kube_flags(u)
    u.add_argument("--dry-run", action="store_true", help="server-side dry run: nothing is deleted")
    u.add_argument("--yes", action="store_true", help="do not ask (required without a terminal)")
    return {"manifest": m, "install": i, "uninstall": u}


USAGE = f"""usage: {PROG} {{run,manifest,install,uninstall}} ...

The per-node agent: a DaemonSet that runs aksnet-top's DNS and egress probes on every node.

  run        run the agent (in the DaemonSet pod; `{PROG} run --help`)
  manifest   print the agent's YAML: `{PROG} manifest --from-cluster | kubectl apply -f -`
  install    create or update the agent in the cluster (asks first; --yes for scripts)
  uninstall  delete the agent from the cluster (asks first; --yes for scripts)

{EPILOG}
"""


def _pyz(ns: argparse.Namespace) -> bytes | None:
    """The zipapp for the stock image (None with --image); built once per command."""
    if ns.image is not None:
        return None
    cached = getattr(ns, "_pyz", None)
    if cached is None:
        try:
            cached = ns._pyz = build_pyz().data
        except PyzError as e:
            _err(f"{e} — or pass --image with an image built from the Dockerfile")
            raise _Exit(EXIT_FAILED) from None
    return cached


def _render(ns: argparse.Namespace, facts: dict[str, Any] | None = None) -> list[dict]:
    facts = facts or {}

    def given(flag: str) -> Any:
        v = getattr(ns, flag)
        return v if v is not None else facts.get(flag)

    if ns.echo_url:
        # lazy: the echo check module (asyncio, ssl) only when an echo URL is given
        from probes.agent.echo import check_echo_url

        check_echo_url(ns.echo_url)  # ValueError in words, before any cluster is touched
    return render(
        ns.image,
        pyz=_pyz(ns),
        namespace=ns.namespace,
        port=AGENT_PORT,
        interval=ns.interval,
        mode=ns.mode,
        kube_dns=given("kube_dns"),
        nodelocal=given("nodelocal"),
        nodelocal_ip=given("nodelocal_ip"),
        localdns=given("localdns"),
        apiserver=given("apiserver"),
        pull_secret=ns.pull_secret,
        reader_groups=ns.reader_group,
        allow_from=ns.allow_from,
        targets=ns.target,
        prometheus=ns.prometheus,
        podmonitor=ns.podmonitor,
        extra_args=[f"--echo-url={ns.echo_url}"] if ns.echo_url else [],
    )


def _unknown_note(ns: argparse.Namespace) -> None:
    """`manifest` without --from-cluster: say what the agent will decide by itself."""
    if ns.nodelocal is None:
        _err(
            "NodeLocal DNS: not read from a cluster (no --from-cluster): each agent probes it only where its "
            "pod's resolv.conf lists its address; pass --nodelocal/--no-nodelocal (and --nodelocal-ip) or "
            "--from-cluster to say it"
        )


def _connect(ns: argparse.Namespace) -> tuple[Any, Any]:
    """(ApiClient, Target) or raises _Exit after saying why."""
    # lazy: probes.kube.connect (dataclasses, kubeconfig) loads only for the sub-commands that reach a cluster
    from probes.kube.connect import KubeConnectError, load

    try:
        api, target = load(ns.kubeconfig, ns.context)
    except KubeConnectError as e:
        _err(str(e))
        raise _Exit(EXIT_FAILED) from None

    api.user_agent = USER_AGENT
    return api, target


def _facts(api: Any, target: Any) -> dict[str, Any]:
    try:
        facts, warnings = discover(api, target.server)
    except InstallError as e:
        _err(f"reading the cluster: {e.message}")
        raise _Exit(EXIT_FAILED) from None
    for w in warnings:
        _err(f"from the cluster: {w}")
    return facts


def _close(api: Any) -> None:
    try:
        api.close()
    except Exception:  # noqa: BLE001 - closing a pool must not hide the result
        pass


def _confirm(ns: argparse.Namespace, action: str, what: str) -> None:
    """Refuse without --yes when stdin is not a terminal; ask when it is. Raises _Exit(4)."""
    if ns.yes or ns.dry_run:
        return
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        _err(
            f"{action} writes to the cluster and needs confirmation: run it again with --yes "
            f"(or review first with `aksnet-top agent manifest ... | kubectl diff -f -`)"
        )
        raise _Exit(EXIT_USAGE)
    sys.stderr.write(f"aksnet-top: {what}. Continue? [y/N] ")
    sys.stderr.flush()
    try:
        answer = stdin.readline().strip().lower()
    except (EOFError, OSError):
        answer = ""
    if answer not in ("y", "yes"):
        _err(f"{action} cancelled: nothing was written")
        raise _Exit(EXIT_USAGE)


def cmd_manifest(argv: Sequence[str]) -> int:
    ns = _parsers()["manifest"].parse_args(list(argv))
    try:
        objs = _render(ns)  # validate flags before touching any cluster
    except ValueError as e:
        _err(str(e))
        return EXIT_USAGE
    if ns.from_cluster:
        api, target = _connect(ns)
        try:
            objs = _render(ns, _facts(api, target))
        except ValueError as e:
            _err(f"--from-cluster: {e}")
            return EXIT_FAILED
        finally:
            _close(api)
    else:
        _unknown_note(ns)
    sys.stdout.write(to_yaml(objs))
    return EXIT_OK


def cmd_install(argv: Sequence[str]) -> int:
    ns = _parsers()["install"].parse_args(list(argv))
    try:
        objs = _render(ns)
    except ValueError as e:
        _err(str(e))
        return EXIT_USAGE
    if not (ns.yes or ns.dry_run) and (sys.stdin is None or not sys.stdin.isatty()):
        _confirm(ns, "install", "")  # refuses before reading any kubeconfig
    api, target = _connect(ns)
    try:
        try:  # install reads the cluster's facts first (read-only), --from-cluster or not
            objs = _render(ns, _facts(api, target))
        except ValueError as e:
            _err(f"from the cluster: {e}")
            return EXIT_FAILED
        image = ns.image or f"{STOCK_IMAGE} running the zipapp from a ConfigMap"
        _confirm(
            ns,
            "install",
            f"install the agent ({len(objs)} objects, image {image}) into namespace "
            f"{ns.namespace} of {target.server} (context {target.context})",
        )
        lines = _applied(lambda: install(objs, api, dry_run=ns.dry_run))
    finally:
        _close(api)
    if lines is None:
        return EXIT_FAILED
    for line in lines:
        print(line)
    if not ns.dry_run:
        _err(f"next: kubectl -n {ns.namespace} rollout status daemonset/{AGENT_NAME}")
    return EXIT_OK


def cmd_uninstall(argv: Sequence[str]) -> int:
    ns = _parsers()["uninstall"].parse_args(list(argv))
    if not (ns.yes or ns.dry_run) and (sys.stdin is None or not sys.stdin.isatty()):
        _confirm(ns, "uninstall", "")
    api, target = _connect(ns)
    try:
        _confirm(
            ns,
            "uninstall",
            f"delete the agent from namespace {ns.namespace} of {target.server} (context {target.context})",
        )
        lines = _applied(lambda: uninstall(api, ns.namespace, dry_run=ns.dry_run))
    finally:
        _close(api)
    if lines is None:
        return EXIT_FAILED
    for line in lines:
        print(line)
    return EXIT_OK


def _applied(write: Callable[[], list[str]]) -> list[str] | None:
    """Run an install/uninstall; on failure print what was done before it, then why."""
    try:
        return write()
    except InstallError as e:
        for line in e.done:
            print(line)
        _err(e.message)
        return None


CAP_NET_RAW = 13
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def raise_net_raw() -> bool:
    """Make CAP_NET_RAW effective if it is permitted; True when it is effective.

    The image's interpreter carries the file capability ``cap_net_raw+p`` (permitted,
    not effective, like ``ping``): a non-root process keeps NET_RAW across its exec when
    the pod adds it, and raises it here, before any thread starts (threads inherit the
    creating thread's sets). Anything else (not Linux, not permitted, no libc) is False:
    the agent's auto mode then finds raw sockets refused and uses connect mode.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        # lazy: ctypes only to raise CAP_NET_RAW, on Linux, in `agent run`
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (ctypes.c_uint32 * 6)()  # two __user_cap_data_struct: effective, permitted, inheritable
        if libc.capget(header, data) != 0:
            return False
        bit = 1 << CAP_NET_RAW
        if data[0] & bit:
            return True
        if not data[1] & bit:
            return False
        data[0] |= bit
        return libc.capset(header, data) == 0
    except (OSError, AttributeError):
        return False


def cmd_run(argv: Sequence[str]) -> int:
    try:
        # lazy: the agent's runtime (asyncio, dnspython, msgspec) loads only for `agent run`
        from probes.agent.main import run
    except ImportError as e:
        _err(f"the agent runtime is not available in this installation ({e})")
        return EXIT_FAILED
    raise_net_raw()  # before the agent starts threads; it reports the mode it ends up using
    return int(run(list(argv)) or 0)  # probes.exitcodes.ExitCode, like every command


COMMANDS = {"run": cmd_run, "manifest": cmd_manifest, "install": cmd_install, "uninstall": cmd_uninstall}


def main(argv: Sequence[str] | None = None) -> int:
    """``aksnet-top agent ...`` (argv without the word ``agent``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        (sys.stdout if args else sys.stderr).write(USAGE)
        return EXIT_OK if args else EXIT_USAGE
    cmd = COMMANDS.get(args[0])
    if cmd is None:
        _err(f"unknown agent command {args[0]!r}: choose run, manifest, install or uninstall")
        sys.stderr.write(USAGE)
        return EXIT_USAGE
    try:
        return cmd(args[1:])
    except _Exit as e:
        return e.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
