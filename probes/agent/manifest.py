"""The Kubernetes objects that run the per-node agent: render them, print them as YAML.

Pure data in, plain dicts out: nothing here talks to a cluster. ``aksnet-top agent
manifest`` prints :func:`to_yaml(render(...)) <to_yaml>` for ``kubectl apply -f -`` or a
GitOps repository, and ``aksnet-top agent install`` sends the same dicts through
:mod:`probes.agent.install`, so what a reviewer reads is exactly what gets installed.

Security posture, and why (the same text heads the YAML, see ``POSTURE``):

* The agent needs **no Kubernetes API access**: its ServiceAccount has no Role and no
  token is mounted (``automountServiceAccountToken: false`` on the account and the pod).
* It runs in the **pod network** (no hostNetwork/hostPID/hostIPC, no hostPath), so it
  tests the DNS and egress path a workload pod really has.
* Non-root (uid/gid 65532), read-only root filesystem (a small emptyDir at /tmp),
  seccomp RuntimeDefault, ``allowPrivilegeEscalation: false`` (no_new_privs), every
  capability dropped but **NET_RAW** in auto/syn mode: SYN-mode egress checks send raw
  TCP SYNs (a half-open handshake tells "dropped" from "refused" without completing
  connections to the target). Connect mode adds no capability at all.
* How a non-root process gets NET_RAW, and why no_new_privs does not stop it: the
  container runtime puts the added capability in the bounding, permitted and effective
  sets of the container's first process (containerd's WithAddedCapabilities), but a
  non-root uid loses permitted capabilities at execve unless the executable carries a
  file capability (Kubernetes sets no ambient capabilities). The image's interpreter has
  ``cap_net_raw+p`` (permitted, no effective bit: the ``ping`` model), so NET_RAW stays
  permitted across the exec, and ``aksnet-top agent run`` moves it to its effective set
  at start (:func:`probes.agent.cli.raise_net_raw`). no_new_privs only forbids an exec
  from *adding* capabilities the process did not already have in its permitted set
  (``cap_bprm_creds_from_file``); NET_RAW was there, so nothing is gained and
  ``allowPrivilegeEscalation: false`` costs nothing. Without the effective bit, the
  interpreter also starts where NET_RAW is not in the bounding set (connect mode, Pod
  Security "restricted", ``docker run --cap-drop ALL``); the agent's ``--mode auto``
  then finds raw sockets refused and falls back to connect mode, saying why.
* Pod Security Admission: NET_RAW is outside *baseline*'s allowed capabilities (the
  moby default set minus NET_RAW) and *restricted*'s, so auto/syn mode needs the
  namespace at **privileged** (enforce), with *baseline* audited so every
  other way out of baseline still shows; connect mode meets **restricted** and the
  namespace enforces it.

* **Reads only through the API server's pod proxy.** The agent's port answers anyone who
  reaches it (no authentication: the app reads it as
  ``/api/v1/namespaces/<ns>/pods/<pod>:9102/proxy/v1/results``, so the API server's
  authentication and the ``pods/proxy`` RBAC verb are the gate). A NetworkPolicy admits
  on that port only the path the API server's proxied requests take into the pod
  network, and nothing else (:data:`KONNECTIVITY`):

  - AKS today: the API server reaches pods (``kubectl logs/exec/port-forward``, webhooks,
    the pod proxy) through the **konnectivity-agent** pods of ``kube-system`` (a
    Deployment, label ``app: konnectivity-agent``; it replaced tunnelfront and aks-link,
    Microsoft's "Tunnel connectivity issues" AKS article), so proxied requests arrive
    with a konnectivity-agent *pod* IP. Calico's operator had to add exactly this
    allow for its webhooks on AKS and GKE (tigera/operator#5212: "AKS labels them
    ``app: konnectivity-agent``"); before konnectivity, tunnelfront did not NAT and the
    traffic came from the control plane's address (Azure/AKS#2440);
  - with **API Server VNet Integration** the API server runs in a delegated subnet of
    the cluster's VNet and dials pods directly from that subnet (no konnectivity in the
    path, Azure/AKS#4119), and where the tunnel runs on the host network proxied
    requests come from the nodes' addresses: give those CIDRs with ``--allow-from``;
  - the kubelet's liveness and readiness probes come from the node itself, which the
    network policy engines AKS offers (Azure NPM, Cilium, Calico) always admit;
  - egress is not restricted: probing egress is the agent's job.

  Prometheus scraping ``/metrics`` from its own pod needs ``--allow-from`` as well.

The people who run the app need a namespaced Role (pods get/list/watch to discover agent
pods, pods/proxy get to read ``/v1/results`` through the API server); it is shipped here
and bound to the groups given in ``reader_groups``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from .pyz import LIMIT as PYZ_LIMIT
from .pyz import PYZ_NAME

__all__ = [
    "AGENT_NAME",
    "AGENT_NAMESPACE",
    "AGENT_PORT",
    "AGENT_SELECTOR",
    "AGENT_LABELS",
    "READER_ROLE",
    "KONNECTIVITY",
    "MODES",
    "POSTURE",
    "STOCK_IMAGE",
    "PYZ_ANNOTATION",
    "render",
    "to_yaml",
]

AGENT_NAME = "aksnet-top-agent"
AGENT_NAMESPACE = "aksnet-top"
AGENT_PORT = 9102
AGENT_SELECTOR = "app.kubernetes.io/name=aksnet-top-agent"
PART_OF = "aksnet-top"
AGENT_LABELS: dict[str, str] = {
    "app.kubernetes.io/name": AGENT_NAME,
    "app.kubernetes.io/part-of": PART_OF,
    "app.kubernetes.io/component": "agent",
}
READER_ROLE = "aksnet-top-agent-reader"
# Where the API server's proxied requests enter the pod network on AKS (module docstring).
KONNECTIVITY: dict[str, Any] = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"app": "konnectivity-agent"}},
}
MODES = ("auto", "connect", "syn")
# The stock image the ConfigMap agent runs on: Microsoft's Azure Linux 3.0 Python image,
# on MCR (every AKS node can pull from it: it is on AKS's required outbound list), the
# same distribution as AKS's Azure Linux nodes; Python 3.12 runs the agent (3.11+).
STOCK_IMAGE = "mcr.microsoft.com/azurelinux/base/python:3.12"
PYZ_MOUNT = "/agent"
PYZ_ANNOTATION = "aksnet-top/agent-sha256"
# Azure Managed Prometheus's collector (the ama-metrics Deployment of kube-system): it
# scrapes annotated pods and PodMonitors
AMA_METRICS: dict[str, Any] = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"rsName": "ama-metrics"}},
}
UID = 65532
CONTAINER = "agent"

# Sized from measurements of the agent's process (python 3.11, dnspython, orjson):
# ~27 MiB RSS in connect mode, ~61 MiB once SYN mode has imported scapy. The request is
# the steady state with scapy loaded (what the scheduler should reserve on every node);
# the limit is twice that, because a memory limit is a hard OOM kill. CPU: probing costs
# 1-2 millicores at the default 10 s interval; the limit only bounds a runaway and is
# generous on purpose: CFS throttling would add up to a 100 ms period of delay to the
# very latencies the agent measures.
RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "10m", "memory": "64Mi"},
    "limits": {"cpu": "250m", "memory": "128Mi"},
}

POSTURE = """\
# aksnet-top per-node agent (generated by `aksnet-top agent manifest`).
#
# Security posture:
# - no Kubernetes API access: the ServiceAccount has no Role and mounts no token;
# - pod network only (no hostNetwork/hostPID/hostIPC, no hostPath): it tests the DNS and
#   egress path workload pods really have;
# - non-root uid/gid 65532, read-only root filesystem, seccomp RuntimeDefault,
#   allowPrivilegeEscalation: false;
# - capabilities: drop ALL; add NET_RAW only in auto/syn mode (SYN-mode egress checks send
#   raw TCP SYNs; connect mode adds nothing). The runtime puts NET_RAW in the permitted set
#   of the container's first process; the image's interpreter carries the file capability
#   cap_net_raw+p so the non-root process keeps it across exec (no_new_privs only blocks
#   capabilities the process did not already have), and `agent run` raises it to
#   effective. Where raw sockets are refused, --mode auto falls back to TCP connects.
# - Pod Security: NET_RAW is outside baseline, so auto/syn mode enforces "privileged"
#   (baseline audited); connect mode enforces "restricted".
# - reads only through the API server's pod proxy: a NetworkPolicy admits the agent's port
#   from kube-system's konnectivity-agent pods (AKS's API-server-to-pod tunnel) and the
#   CIDRs given with --allow-from (API Server VNet Integration's subnet, a scraper), nothing
#   else; the kubelet's probes come from the node, which policy engines always admit.
# - the namespaced Role aksnet-top-agent-reader (pods get/list/watch, pods/proxy get) is
#   for the people who run the app, bound to the groups given with --reader-group.
"""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")
_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):([0-9]{1,5})$")


def _check(
    image: str,
    namespace: str,
    port: int,
    interval: float | None,
    mode: str,
    kube_dns: str | None,
    apiserver: str | None,
    pull_secret: str | None,
    reader_groups: Sequence[str],
    allow_from: Sequence[str] = (),
) -> None:
    """Raise ValueError in the user's words for a parameter the cluster would reject."""
    if not image or not _IMAGE.match(image) or len(image) > 512:
        raise ValueError(f"image {image!r} is not an image reference (e.g. myacr.azurecr.io/aksnet-top:0.1.0)")
    if not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        raise ValueError(
            f"namespace {namespace!r} is not a valid name (lowercase letters, digits and '-', at most 63 characters)"
        )
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port {port!r} must be from 1 to 65535")
    if interval is not None and (isinstance(interval, bool) or not 0.5 <= float(interval) <= 3600):
        raise ValueError(f"interval {interval!r} must be from 0.5 to 3600 seconds")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: choose auto, connect or syn")
    if kube_dns is not None:
        try:
            ipaddress.ip_address(kube_dns)
        except ValueError:
            raise ValueError(f"kube-dns address {kube_dns!r} is not an IP address") from None
    if apiserver is not None:
        m = _HOSTPORT.match(apiserver)
        if not m or not 1 <= int(m.group(3)) <= 65535:
            raise ValueError(
                f"apiserver {apiserver!r} must be HOST:PORT (e.g. myaks-abc123.hcp.westeurope.azmk8s.io:443)"
            )
    if pull_secret is not None and (not _DNS_LABEL.match(pull_secret.replace(".", "-")) or len(pull_secret) > 253):
        raise ValueError(f"pull secret name {pull_secret!r} is not a valid Secret name")
    for g in reader_groups:
        if not isinstance(g, str) or not g.strip() or g != g.strip():
            raise ValueError(f"reader group {g!r} must be a non-empty group name or Entra ID object id")
    for c in allow_from:
        try:
            ipaddress.ip_network(c, strict=True)
        except (TypeError, ValueError):
            raise ValueError(f"--allow-from {c!r} must be a CIDR such as 10.224.0.0/16 (host bits zero)") from None


def _fmt_interval(x: float) -> str:
    return f"{float(x):g}"


def agent_args(
    *,
    port: int = AGENT_PORT,
    interval: float | None = None,
    mode: str = "auto",
    kube_dns: str | None = None,
    nodelocal: bool | None = None,
    nodelocal_ip: str | None = None,
    localdns: bool | None = None,
    apiserver: str | None = None,
    names: Sequence[str] = (),
    targets: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The container's args: ``aksnet-top agent run ...`` (the node comes from NODE_NAME).

    The agent binds the pod IP (``$(POD_IP)``, expanded by the kubelet): the kubelet's
    probes and the API server's pod proxy both dial that address.
    """
    args = ["agent", "run", "--bind=$(POD_IP)", f"--port={port}", f"--mode={mode}"]
    if interval is not None:
        args.append(f"--interval={_fmt_interval(interval)}")
    if kube_dns is not None:
        args.append(f"--kube-dns={kube_dns}")
    if nodelocal is not None:
        args.append("--nodelocal" if nodelocal else "--no-nodelocal")
    if nodelocal_ip is not None:
        args.append(f"--nodelocal-ip={nodelocal_ip}")
    if localdns is not None:
        args.append("--localdns" if localdns else "--no-localdns")
    if apiserver is not None:
        args.append(f"--apiserver={apiserver}")
    args += [f"--name={n}" for n in names]
    args += [f"--target={t}" for t in targets]
    args += list(extra_args)
    return args


def _meta(name: str, namespace: str | None, component: str) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": PART_OF,
    }
    md: dict[str, Any] = {"name": name}
    if namespace is not None:
        md["namespace"] = namespace
    md["labels"] = labels
    return md


def _pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def render(
    image: str | None = None,
    *,
    pyz: bytes | None = None,
    namespace: str = AGENT_NAMESPACE,
    port: int = AGENT_PORT,
    interval: float | None = None,
    mode: str | None = None,
    kube_dns: str | None = None,
    nodelocal: bool | None = None,
    nodelocal_ip: str | None = None,
    localdns: bool | None = None,
    apiserver: str | None = None,
    pull_secret: str | None = None,
    reader_groups: Sequence[str] = (),
    names: Sequence[str] = (),
    targets: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    allow_from: Sequence[str] = (),
    prometheus: bool = False,
    podmonitor: bool = False,
) -> list[dict]:
    """The agent's objects, in the order they must be created.

    Namespace, ServiceAccount, the readers' Role, a RoleBinding of that Role to
    ``reader_groups`` (only when groups are given), the NetworkPolicy (konnectivity
    agents and ``allow_from`` CIDRs only), the zipapp's ConfigMap (stock image only), the
    DaemonSet, a PodMonitor (``podmonitor``). `names` and `targets` become the agent's
    ``--name``/``--target`` flags, `extra_args` are appended verbatim.

    Two ways to run the agent:

    * ``image`` None (the default): the stock :data:`STOCK_IMAGE` runs ``pyz`` (the
      zipapp's bytes, :func:`probes.agent.pyz.build`) from a ConfigMap, in connect mode
      with no capability at all;
    * ``image`` given: that image's ``aksnet-top agent run`` (the Dockerfile), SYN mode
      with NET_RAW when ``mode`` is auto or syn.

    ``prometheus`` annotates the pods for annotation-based scraping and admits Azure
    Managed Prometheus's collector (kube-system pods ``rsName: ama-metrics``) to the
    port; ``podmonitor`` (implies it) adds an ``azmonitoring.coreos.com/v1`` PodMonitor.
    Raises ValueError (user's words) for a parameter the cluster or the agent would reject.
    """
    reader_groups = list(dict.fromkeys(reader_groups))  # keep order, drop repeats
    allow_from = list(dict.fromkeys(allow_from))
    stock = image is None
    if stock:
        if mode not in (None, "connect"):
            raise ValueError(
                f"mode {mode!r} needs raw sockets, which the stock image's agent does not use: "
                "it runs in connect mode; for SYN mode build the image and pass --image"
            )
        if not pyz:
            raise ValueError("the stock image needs the agent's zipapp (pyz) to ship in a ConfigMap")
        if len(pyz) > PYZ_LIMIT:
            raise ValueError(f"the agent's zipapp is {len(pyz):,} bytes, over the ConfigMap limit of {PYZ_LIMIT:,}")
        mode = "connect"
    mode = mode or "auto"
    prometheus = prometheus or podmonitor
    run_image = STOCK_IMAGE if image is None else image
    _check(run_image, namespace, port, interval, mode, kube_dns, apiserver, pull_secret, reader_groups, allow_from)
    if nodelocal_ip is not None:
        try:
            ipaddress.ip_address(nodelocal_ip)
        except ValueError:
            raise ValueError(f"NodeLocal DNS address {nodelocal_ip!r} is not an IP address") from None

    ns_md = _meta(namespace, None, "namespace")
    for key in ("app.kubernetes.io/name", "app.kubernetes.io/component"):
        ns_md["labels"].pop(key)
    ns_md["labels"].update(
        {
            # the level the agent's pod meets: NET_RAW is outside "baseline" (and "restricted")
            "pod-security.kubernetes.io/enforce": "restricted" if mode == "connect" else "privileged",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }
    )
    if mode != "connect":  # anything else beyond baseline still shows in the audit log
        ns_md["labels"]["pod-security.kubernetes.io/audit"] = "baseline"
    namespace_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": ns_md}

    sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(AGENT_NAME, namespace, "agent"),
        "automountServiceAccountToken": False,
    }

    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(READER_ROLE, namespace, "reader"),
        "rules": [
            # the app finds agent pods by label (and watches them come and go)...
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            # ...and reads GET /api/v1/namespaces/<ns>/pods/<pod>:9102/proxy/v1/results
            {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]},
        ],
    }
    objs: list[dict] = [namespace_obj, sa, role]
    if reader_groups:
        objs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": _meta(READER_ROLE, namespace, "reader"),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": READER_ROLE},
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in reader_groups
                ],
            }
        )

    # before the DaemonSet: no agent pod is ever up without it
    objs.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(AGENT_NAME, namespace, "agent"),
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": AGENT_NAME}},
                "policyTypes": ["Ingress"],  # egress stays open: probing it is the agent's job
                "ingress": [
                    {
                        "from": [
                            dict(KONNECTIVITY),
                            *([dict(AMA_METRICS)] if prometheus else []),
                            *({"ipBlock": {"cidr": c}} for c in allow_from),
                        ],
                        "ports": [{"protocol": "TCP", "port": port}],
                    }
                ],
            },
        }
    )

    caps: dict[str, list[str]] = {"drop": ["ALL"]}
    if mode != "connect":
        caps["add"] = ["NET_RAW"]  # raw TCP SYNs; see the module docstring for how a non-root uid gets it
    args = agent_args(
        port=port,
        interval=interval,
        mode=mode,
        kube_dns=kube_dns,
        nodelocal=nodelocal,
        nodelocal_ip=nodelocal_ip,
        localdns=localdns,
        apiserver=apiserver,
        names=names,
        targets=targets,
        extra_args=extra_args,
    )
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": run_image,
        "imagePullPolicy": _pull_policy(run_image),
        "args": args,
        "env": [
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},  # read-only root: no .pyc writes
            {"name": "HOME", "value": "/tmp"},  # uid 65532 has no home; scapy looks for ~/.config
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 20,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "resources": {k: dict(v) for k, v in RESOURCES.items()},
        "securityContext": {
            "privileged": False,
            "allowPrivilegeEscalation": False,  # no_new_privs: keeps NET_RAW, see the module docstring
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": caps,
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}]
    template_annotations = {"kubectl.kubernetes.io/default-container": CONTAINER}
    objs_before_ds: list[dict] = []
    if stock:
        assert pyz is not None
        # python3 (not python): the Azure Linux image's interpreter; -I: no user site, no
        # PYTHONPATH, no current directory on the path: only the zip and the standard library
        container["command"] = ["python3", "-I", f"{PYZ_MOUNT}/{PYZ_NAME}"]
        container["args"] = args[2:]  # the zip's __main__ is `agent run`
        container["volumeMounts"].append({"name": "agent", "mountPath": PYZ_MOUNT, "readOnly": True})
        volumes.append(
            {
                "name": "agent",
                "configMap": {"name": AGENT_NAME, "defaultMode": 0o444, "items": [{"key": PYZ_NAME, "path": PYZ_NAME}]},
            }
        )
        # the pods roll when the code changes (a ConfigMap update alone restarts nothing)
        template_annotations[PYZ_ANNOTATION] = hashlib.sha256(pyz).hexdigest()
        objs_before_ds.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta(AGENT_NAME, namespace, "agent"),
                "binaryData": {PYZ_NAME: base64.b64encode(pyz).decode("ascii")},
            }
        )
    if prometheus:
        template_annotations.update(
            {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}
        )
    pod_spec: dict[str, Any] = {
        "serviceAccountName": AGENT_NAME,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,  # no env var per Service: the agent does not use them
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "dnsPolicy": "ClusterFirst",  # the pod's real DNS path is what gets tested
        "terminationGracePeriodSeconds": 10,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # Linux nodes only (the image is Linux; AKS Windows pools exist), and not on
        # virtual nodes (ACI virtual-kubelet): they have no node network to probe.
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]}]}
                    ]
                }
            }
        },
        # every node, tainted pools included (system pools, GPU pools, spot pools...)
        "tolerations": [{"operator": "Exists"}],
        "containers": [container],
        "volumes": volumes,
    }
    if pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": pull_secret}]
    ds_md = _meta(AGENT_NAME, namespace, "agent")
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": ds_md,
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": AGENT_NAME}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "revisionHistoryLimit": 3,
            "template": {
                "metadata": {"labels": dict(AGENT_LABELS), "annotations": template_annotations},
                "spec": pod_spec,
            },
        },
    }
    objs += objs_before_ds
    objs.append(daemonset)
    if podmonitor:
        objs.append(
            {
                "apiVersion": "azmonitoring.coreos.com/v1",
                "kind": "PodMonitor",
                "metadata": _meta(AGENT_NAME, namespace, "agent"),
                "spec": {
                    # the limits Azure Managed Prometheus's pipeline keeps (its reference PodMonitor)
                    "labelLimit": 63,
                    "labelNameLengthLimit": 511,
                    "labelValueLengthLimit": 1023,
                    "selector": {"matchLabels": {"app.kubernetes.io/name": AGENT_NAME}},
                    "podMetricsEndpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
                },
            }
        )
    return objs


class _Dumper:
    """A SafeDumper that keeps key order and never emits aliases (&id001) for repeated dicts."""

    _cls: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls._cls is None:
            # lazy: PyYAML (~10 ms) only to print YAML; `agent` imports this module for every sub-command
            import yaml

            class D(yaml.SafeDumper):
                def ignore_aliases(self, data: Any) -> bool:
                    return True

            cls._cls = D
        return cls._cls


def to_yaml(objs: Sequence[dict]) -> str:
    """A multi-document YAML stream (``---`` between objects), headed by the posture notes."""
    # lazy: PyYAML (~10 ms) only to print YAML; `agent` imports this module for every sub-command
    import yaml

    body = yaml.dump_all(
        list(objs), Dumper=_Dumper.get(), sort_keys=False, explicit_start=True, default_flow_style=False, width=4096
    )
    return POSTURE + body
