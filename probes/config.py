"""One typed configuration, layered: defaults < config file < AKSNET_* environment < flags.

Every key lives in a section dataclass; the file, the environment and the flags all go
through the same coercion so a bad value gets the same clear message wherever it came
from, naming the key and its origin.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints


class ConfigError(Exception):
    """A configuration value or key the user must fix; the message says which and where."""


@dataclass(frozen=True, slots=True)
class KubeConfig:
    kubeconfig: str = ""  # path; empty = $KUBECONFIG or ~/.kube/config, like kubectl
    context: str = ""  # empty = current-context
    page_size: int = 500  # list page size (limit/continue), as kubectl uses
    request_timeout: float = 10.0  # seconds, for each list request
    watch_timeout: int = 300  # seconds a watch stream may stay open before it is renewed


@dataclass(frozen=True, slots=True)
class UiConfig:
    refresh_interval: float = 0.25  # seconds between checks for a new snapshot
    theme: str = "textual-dark"


@dataclass(frozen=True, slots=True)
class DemoConfig:
    scenario: str = "healthy"  # built-in name or path of a scenario file
    nodes: int = 0  # 0 = as many as the scenario says


@dataclass(frozen=True, slots=True)
class DnsConfig:
    interval: float = 5.0  # seconds between queries of one (vantage, resolver, name)
    timeout: float = 2.0  # seconds: one query's deadline, TCP retry included
    names: tuple[str, ...] = ("kubernetes.default.svc.cluster.local", "mcr.microsoft.com")
    resolvers: tuple[str, ...] = ()  # extra servers: "10.1.0.4", "10.1.0.4:5353", "[fd00::53]:53"
    azure_dns: bool = False  # also probe Azure DNS 168.63.129.16
    overrides: tuple[str, ...] = ()  # "RESOLVER=HOST[:PORT]": dial HOST:PORT for that resolver


@dataclass(frozen=True, slots=True)
class EgressConfig:
    interval: float = 10.0  # seconds between checks of one (vantage, target)
    timeout: float = 2.0  # seconds a handshake may take (like `nc -w 2`)
    mode: str = "auto"  # auto (SYN where raw sockets are allowed) | syn | connect
    targets: tuple[str, ...] = ()  # extra "host:port" / "[v6]:port" targets
    aks_defaults: bool = True  # check AKS's required outbound endpoints (MCR, ARM, Entra ID, …)
    apiserver: bool = True  # check the cluster's API server host:port from the kubeconfig


@dataclass(frozen=True, slots=True)
class AzureConfig:
    enabled: bool = True  # false: no Azure call at all; the SNAT pane says so
    subscription: str = ""  # "" = from the nodes' providerID
    node_resource_group: str = ""  # "" = from the kubernetes.azure.com/cluster node label (MC_…)
    window_minutes: int = 30  # SNAT metrics window (PT1M points)
    refresh_seconds: float = 60.0  # seconds between Azure Monitor refreshes
    firewall_id: str = ""  # Azure Firewall resource ID (userDefinedRouting): chart SNATPortUtilization


@dataclass(frozen=True, slots=True)
class AgentsConfig:
    enabled: bool = True  # read the per-node agents (`aksnet-top agent install`) when they run
    namespace: str = "aksnet-top"  # where the agent DaemonSet runs
    selector: str = "app.kubernetes.io/name=aksnet-top-agent"  # label selector of its pods
    port: int = 9102  # the agents' port, reached through the API server's pod proxy
    budget: float = 5.0  # API requests per second for all agent reads together (the app)
    check_budget: float = 20.0  # the same for `check`: one bounded burst, every agent read once
    timeout: float = 3.0  # seconds one read through the pod proxy may take


@dataclass(frozen=True, slots=True)
class Config:
    kube: KubeConfig = field(default_factory=KubeConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    egress: EgressConfig = field(default_factory=EgressConfig)
    azure: AzureConfig = field(default_factory=AzureConfig)
    agents: AgentsConfig = field(default_factory=AgentsConfig)


# Bounds checked after coercion: key -> (predicate, what it must be)
_CHECKS: dict[str, tuple[Any, str]] = {
    "kube.page_size": (lambda v: 1 <= v <= 10_000, "an integer from 1 to 10000"),
    "kube.request_timeout": (lambda v: 0 < v <= 600, "a number of seconds above 0 and at most 600"),
    "kube.watch_timeout": (lambda v: 10 <= v <= 3600, "an integer of seconds from 10 to 3600"),
    "ui.refresh_interval": (lambda v: 0.05 <= v <= 10, "a number of seconds from 0.05 to 10"),
    "demo.nodes": (lambda v: 0 <= v <= 5000, "an integer from 0 to 5000"),
    "dns.interval": (lambda v: 0.1 <= v <= 3600, "a number of seconds from 0.1 to 3600"),
    "dns.timeout": (lambda v: 0.05 <= v <= 60, "a number of seconds from 0.05 to 60"),
    "egress.interval": (lambda v: 0.5 <= v <= 3600, "a number of seconds from 0.5 to 3600"),
    "egress.timeout": (lambda v: 0.05 <= v <= 60, "a number of seconds from 0.05 to 60"),
    "azure.window_minutes": (lambda v: 5 <= v <= 1440, "an integer of minutes from 5 to 1440"),
    "azure.refresh_seconds": (lambda v: 15 <= v <= 3600, "a number of seconds from 15 to 3600"),
    "agents.port": (lambda v: 1 <= v <= 65535, "a port from 1 to 65535"),
    "agents.budget": (lambda v: 0.1 <= v <= 100, "a number of requests per second from 0.1 to 100"),
    "agents.check_budget": (lambda v: 0.1 <= v <= 100, "a number of requests per second from 0.1 to 100"),
    "agents.timeout": (lambda v: 0.1 <= v <= 60, "a number of seconds from 0.1 to 60"),
}


def parse_override(text: str) -> tuple[str, tuple[str, int]]:
    """'kube-dns=127.0.0.1:5353' or '169.254.20.10=[::1]:53' -> (resolver, (host, port)).
    RESOLVER is a resolver key (nodelocal, kube-dns, coredns/<pod>, azure-dns) or the
    production address it has; ValueError says what is wrong."""
    from probes.dns.resolvers import parse_address

    who, sep, where = text.partition("=")
    who, where = who.strip(), where.strip()
    if not sep or not who or not where:
        raise ValueError(f"{text!r} must look like RESOLVER=HOST[:PORT], e.g. kube-dns=127.0.0.1:5353")
    return who, parse_address(where)


def _check_names(v: tuple[str, ...]) -> tuple[str, ...]:
    from probes.dns.resolvers import validate_names

    return validate_names(v)


def _check_resolvers(v: tuple[str, ...]) -> tuple[str, ...]:
    from probes.dns.resolvers import parse_address

    for text in v:
        parse_address(text)
    return v


def _check_overrides(v: tuple[str, ...]) -> tuple[str, ...]:
    for text in v:
        parse_override(text)
    return v


def _check_egress_mode(v: str) -> str:
    m = v.strip().lower()
    if m not in ("auto", "syn", "connect"):
        raise ValueError(f"must be auto, syn or connect, got {v!r}")
    return m


def _check_egress_targets(v: tuple[str, ...]) -> tuple[str, ...]:
    from probes.egress.targets import parse_target

    if len(v) > 10_000:
        raise ValueError(f"{len(v)} targets; at most 10000")
    return tuple(parse_target(t).text for t in v)  # normalised: 'Host:443' -> 'host:443'


# Validators run after coercion and the bounds: they may normalise, or raise ValueError
# whose message is shown after the key's name.
_VALIDATORS: dict[str, Any] = {
    "dns.names": _check_names,
    "dns.resolvers": _check_resolvers,
    "dns.overrides": _check_overrides,
    "egress.mode": _check_egress_mode,
    "egress.targets": _check_egress_targets,
}


def default_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("AKSNET_CONFIG"):
        return Path(env["AKSNET_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aksnet-top" / "config.toml"


def _sections() -> dict[str, type]:
    hints = get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def _coerce(value: Any, typ: Any, key: str, origin: str) -> Any:
    def bad(what: str) -> ConfigError:
        return ConfigError(f"{origin}: {key} must be {what}, got {value!r}")

    from_text = isinstance(value, str)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if from_text and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if from_text and value.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise bad("true or false")
    if typ is int:
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            return value
        if from_text:
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad("an integer")
    if typ is float:
        if isinstance(value, bool):
            raise bad("a number")
        if isinstance(value, (int, float)):
            return float(value)
        if from_text:
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise bad("a number")
    if typ is str:
        if isinstance(value, str):
            return value
        raise bad("a string")
    if typ == tuple[str, ...]:
        # a TOML array of strings, or (environment, flags) one string, comma-separated
        if from_text:
            return tuple(p.strip() for p in value.split(",") if p.strip())
        if isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value):
            return tuple(x.strip() for x in value)
        raise bad("a list of strings")
    raise ConfigError(f"{origin}: {key} has an unsupported type")  # a programming error, said plainly


def _apply(cfg: Config, updates: Mapping[str, Mapping[str, Any]], origin: str) -> Config:
    sections = _sections()
    changed: dict[str, Any] = {}
    for sec_name, values in updates.items():
        if sec_name not in sections:
            known = ", ".join(sorted(sections))
            raise ConfigError(f"{origin}: unknown section [{sec_name}] (known: {known})")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{origin}: [{sec_name}] must be a table of keys")
        sec_type = sections[sec_name]
        hints = get_type_hints(sec_type)
        current = changed.get(sec_name, getattr(cfg, sec_name))
        new_values: dict[str, Any] = {}
        for key, raw in values.items():
            full = f"{sec_name}.{key}"
            if key not in hints:
                known = ", ".join(sorted(hints))
                raise ConfigError(f"{origin}: unknown key {full} (known in [{sec_name}]: {known})")
            value = _coerce(raw, hints[key], full, origin)
            check = _CHECKS.get(full)
            if check and not check[0](value):
                raise ConfigError(f"{origin}: {full} must be {check[1]}, got {raw!r}")
            validate = _VALIDATORS.get(full)
            if validate is not None:
                try:
                    value = validate(value)
                except ValueError as e:
                    raise ConfigError(f"{origin}: {full}: {e}") from None
            new_values[key] = value
        changed[sec_name] = dataclasses.replace(current, **new_values)
    return dataclasses.replace(cfg, **changed) if changed else cfg


def from_env(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """AKSNET_<SECTION>_<KEY>=value -> {section: {key: value}}; AKSNET_CONFIG is the file path."""
    out: dict[str, dict[str, str]] = {}
    sections = _sections()
    for name, value in env.items():
        if not name.startswith("AKSNET_") or name == "AKSNET_CONFIG":
            continue
        rest = name[len("AKSNET_") :].lower()
        for sec in sections:
            if rest.startswith(sec + "_"):
                out.setdefault(sec, {})[rest[len(sec) + 1 :]] = value
                break
        else:
            raise ConfigError(f"environment: unknown variable {name} (expected AKSNET_<SECTION>_<KEY>, sections: {', '.join(sorted(sections))})")
    return out


def load(
    flags: Mapping[str, Mapping[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Config:
    """Build the Config from all layers. `flags` holds only the flags the user gave."""
    env = os.environ if env is None else env
    cfg = Config()
    file_path = path or default_path(env)
    explicit = path is not None or bool(env.get("AKSNET_CONFIG"))
    if file_path.exists():
        try:
            data = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{file_path}: not valid TOML: {e}") from None
        except OSError as e:
            raise ConfigError(f"{file_path}: cannot read: {e.strerror}") from None
        cfg = _apply(cfg, data, str(file_path))
    elif explicit:
        raise ConfigError(f"{file_path}: config file not found")
    cfg = _apply(cfg, from_env(env), "environment")
    if flags:
        cfg = _apply(cfg, flags, "command line")
    return cfg


def describe() -> list[tuple[str, str, str]]:
    """(key, type, default) for every key: the README table and `aksnet-top config` come from here."""
    rows = []
    for sec_name, sec_type in _sections().items():
        hints = get_type_hints(sec_type)
        default = sec_type()
        for f in dataclasses.fields(sec_type):
            typ = "list[str]" if hints[f.name] == tuple[str, ...] else hints[f.name].__name__
            rows.append((f"{sec_name}.{f.name}", typ, repr(getattr(default, f.name))))
    return rows
