"""One typed configuration, layered: defaults < config file < AKSNET_* environment < flags.

The section dataclasses below are the schema: each key's type, and for numbers its bounds
with the words for them (``Annotated[int, Meta(ge=…, le=…, description=…)]``). msgspec
checks every layer against them (a struct per layer, built from the dataclasses, where a
key not given is UNSET and an unknown key or section is refused), converting text from
the environment and flags the same way as TOML values; its errors are said again in one
line naming the key and where it came from. Checks a type cannot express (DNS names,
targets, overrides) run after, on the keys the layer set.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, get_type_hints

from probes.azure.cloud import check_endpoint, cloud_name


class ConfigError(Exception):
    """A configuration value or key the user must fix; the message says which and where."""


@dataclass(frozen=True, slots=True)
class Span:
    """A key's bounds and the words for them; made into msgspec's `Meta` when a layer is
    first checked (msgspec, tomllib and the layer schema cost ~0.1 s to import and build,
    and the topology path only needs the dataclasses)."""

    description: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None


def _span(lo: float, hi: float, what: str) -> Span:
    return Span(what, ge=lo, le=hi)


PageSize = Annotated[int, _span(1, 10_000, "an integer from 1 to 10000")]
RequestTimeout = Annotated[float, Span("a number of seconds above 0 and at most 600", gt=0, le=600)]
WatchTimeout = Annotated[int, _span(10, 3600, "an integer of seconds from 10 to 3600")]
RefreshInterval = Annotated[float, _span(0.05, 10, "a number of seconds from 0.05 to 10")]
DemoNodes = Annotated[int, _span(0, 5000, "an integer from 0 to 5000")]
DnsInterval = Annotated[float, _span(0.1, 3600, "a number of seconds from 0.1 to 3600")]
ProbeTimeout = Annotated[float, _span(0.05, 60, "a number of seconds from 0.05 to 60")]
EgressInterval = Annotated[float, _span(0.5, 3600, "a number of seconds from 0.5 to 3600")]
WindowMinutes = Annotated[int, _span(5, 1440, "an integer of minutes from 5 to 1440")]
AzureRefresh = Annotated[float, _span(15, 3600, "a number of seconds from 15 to 3600")]
PortNumber = Annotated[int, _span(1, 65535, "a port from 1 to 65535")]
Budget = Annotated[float, _span(0.1, 100, "a number of requests per second from 0.1 to 100")]
AgentTimeout = Annotated[float, _span(0.1, 60, "a number of seconds from 0.1 to 60")]
HttpsInterval = Annotated[float, _span(1, 3600, "a number of seconds from 1 to 3600")]
Concurrency = Annotated[int, _span(1, 256, "an integer from 1 to 256")]
RecordMb = Annotated[float, _span(1, 1_000_000, "a number of MB from 1 to 1000000")]
RecordDays = Annotated[float, _span(0.01, 3650, "a number of days from 0.01 to 3650")]


@dataclass(frozen=True, slots=True)
class KubeConfig:
    kubeconfig: str = ""  # path; empty = $KUBECONFIG or ~/.kube/config, like kubectl
    context: str = ""  # empty = current-context
    page_size: PageSize = 500  # list page size (limit/continue), as kubectl uses
    request_timeout: RequestTimeout = 10.0  # seconds, for each list request
    watch_timeout: WatchTimeout = 10  # seconds a watch may stay open before it is renewed; + 2 s of silence = stale


@dataclass(frozen=True, slots=True)
class UiConfig:
    refresh_interval: RefreshInterval = 0.5  # seconds between snapshots (frames): 2 a second
    theme: str = "textual-dark"


@dataclass(frozen=True, slots=True)
class DemoConfig:
    scenario: str = "healthy"  # built-in name or path of a scenario file
    nodes: DemoNodes = 0  # 0 = as many as the scenario says


@dataclass(frozen=True, slots=True)
class DnsConfig:
    interval: DnsInterval = 5.0  # seconds between queries of one (vantage, resolver, name)
    timeout: ProbeTimeout = 2.0  # seconds: one query's deadline, TCP retry included
    # two cluster names (twice the samples for the slow/replica rules: probes.dns.resolvers) and one external
    names: tuple[str, ...] = (
        "kubernetes.default.svc.cluster.local",
        "kube-dns.kube-system.svc.cluster.local",
        "mcr.microsoft.com",
    )
    resolvers: tuple[str, ...] = ()  # extra servers: "10.1.0.4", "10.1.0.4:5353", "[fd00::53]:53"
    azure_dns: bool = False  # also probe Azure DNS 168.63.129.16
    overrides: tuple[str, ...] = ()  # "RESOLVER=HOST[:PORT]": dial HOST:PORT for that resolver


@dataclass(frozen=True, slots=True)
class EgressConfig:
    interval: EgressInterval = 10.0  # seconds between checks of one (vantage, target)
    timeout: ProbeTimeout = 2.0  # seconds a handshake may take (like `nc -w 2`)
    mode: str = "auto"  # auto (SYN where raw sockets are allowed) | syn | connect
    targets: tuple[str, ...] = ()  # extra "host:port" / "[v6]:port" targets
    aks_defaults: bool = True  # check AKS's required outbound endpoints (MCR, ARM, Entra ID, …)
    apiserver: bool = True  # check the cluster's API server host:port from the kubeconfig


@dataclass(frozen=True, slots=True)
class HttpsConfig:
    enabled: bool = True  # TCP + TLS handshake to each ingress host (SNI = the host) from here
    interval: HttpsInterval = 30.0  # seconds between handshakes with one (host, address)
    timeout: ProbeTimeout = 3.0  # seconds for TCP + TLS together
    http: bool = False  # also HEAD / after the handshake (a request to the customer's app: off by default)
    http_timeout: ProbeTimeout = 2.0  # seconds HEAD / may take
    concurrency: Concurrency = 32  # handshakes in flight at once
    ca_bundle: str = ""  # PEM file of CAs to trust instead of the system's ("" = the system store)


@dataclass(frozen=True, slots=True)
class AzureConfig:
    enabled: bool = True  # false: no Azure call at all; the SNAT pane says so
    subscription: str = ""  # "" = from the nodes' providerID
    node_resource_group: str = ""  # "" = from the nodes' providerID (MC_…)
    window_minutes: WindowMinutes = 30  # SNAT metrics window (PT1M points)
    refresh_seconds: AzureRefresh = 60.0  # seconds between Azure Monitor refreshes
    firewall_id: str = ""  # Azure Firewall resource ID (userDefinedRouting): chart SNATPortUtilization
    cloud: str = "AzureCloud"  # AzureCloud | AzureChinaCloud | AzureUSGovernment: ARM endpoint and sign-in authority
    arm_endpoint: str = ""  # "" = the cloud's; https://… for Azure Stack or a private endpoint (http:// loopback only)


@dataclass(frozen=True, slots=True)
class AgentsConfig:
    enabled: bool = True  # read the per-node agents (`aksnet-top agent install`) when they run
    namespace: str = "aksnet-top"  # where the agent DaemonSet runs
    selector: str = "app.kubernetes.io/name=aksnet-top-agent"  # label selector of its pods
    # an echo endpoint (answers a GET with the caller's IP) the agents ask every minute: the
    # public IP each node leaves with, beside ARM's answer ("" = off; `agent install` passes it)
    echo_url: str = ""
    port: PortNumber = 9102  # the agents' port, reached through the API server's pod proxy
    budget: Budget = 5.0  # API requests per second for all agent reads together (the app)
    check_budget: Budget = 20.0  # the same for `check`: one bounded burst, every agent read once
    timeout: AgentTimeout = 3.0  # seconds one read through the pod proxy may take


@dataclass(frozen=True, slots=True)
class RecordConfig:
    enabled: bool = True  # the flight recorder: every run's frames to one file (`--no-record`: off)
    max_mb: RecordMb = 500.0  # all recordings together; the oldest go first
    max_age_days: RecordDays = 14.0  # recordings older than this go
    dir: str = ""  # "" = $XDG_STATE_HOME/aksnet-top/recordings (~/.local/state/…)


@dataclass(frozen=True, slots=True)
class Config:
    kube: KubeConfig = field(default_factory=KubeConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    egress: EgressConfig = field(default_factory=EgressConfig)
    https: HttpsConfig = field(default_factory=HttpsConfig)
    azure: AzureConfig = field(default_factory=AzureConfig)
    agents: AgentsConfig = field(default_factory=AgentsConfig)
    record: RecordConfig = field(default_factory=RecordConfig)


def parse_override(text: str) -> tuple[str, tuple[str, int]]:
    """'kube-dns=127.0.0.1:5353' -> (resolver, (host, port)): see probes.dns.resolvers.parse_override."""
    # lazy: probes.dns.resolvers (+ probes.kube.model, ~10 ms) is not loaded by `import tui.cli`
    from probes.dns.resolvers import parse_override as parse

    return parse(text)


def _check_names(v: tuple[str, ...]) -> tuple[str, ...]:
    # lazy: probes.dns.resolvers (+ probes.kube.model, ~10 ms) is not loaded by `import tui.cli`
    from probes.dns.resolvers import validate_names

    return validate_names(v)


def _check_resolvers(v: tuple[str, ...]) -> tuple[str, ...]:
    # lazy: probes.dns.resolvers (+ probes.kube.model, ~10 ms) is not loaded by `import tui.cli`
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
    # lazy: probes.egress.targets (+ probes.kube.model, ~10 ms) is not loaded by `import tui.cli`
    from probes.egress.targets import parse_target

    if len(v) > 10_000:
        raise ValueError(f"{len(v)} targets; at most 10000")
    return tuple(parse_target(t).text for t in v)  # normalised: 'Host:443' -> 'host:443'


# Validators run after coercion and the bounds: they may normalise, or raise ValueError
# whose message is shown after the key's name.
def _check_echo_url(v: str) -> str:
    if not v:
        return v
    # lazy: the agent's echo check (urllib.parse) only for a config that sets one
    from probes.agent.echo import check_echo_url

    return check_echo_url(v)


_VALIDATORS: dict[str, Any] = {
    "dns.names": _check_names,
    "dns.resolvers": _check_resolvers,
    "dns.overrides": _check_overrides,
    "egress.mode": _check_egress_mode,
    "egress.targets": _check_egress_targets,
    "azure.cloud": cloud_name,
    "azure.arm_endpoint": check_endpoint,
    "agents.echo_url": _check_echo_url,
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


def _keys(section: type) -> dict[str, Any]:
    """key -> its declared type, bounds included (Annotated[int, Meta(...)])."""
    hints = get_type_hints(section, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(section)}


def _base(typ: Any) -> Any:
    return typ.__origin__ if hasattr(typ, "__metadata__") else typ


def _checked(typ: Any) -> Any:
    """Annotated[T, Span] as msgspec checks it: Annotated[T, Meta(...)]."""
    # lazy: msgspec loads when a layer is first checked, not with the dataclasses
    import msgspec

    span = next((m for m in getattr(typ, "__metadata__", ()) if isinstance(m, Span)), None)
    if span is None:
        return typ
    make: Any = msgspec.Meta  # its stubs take no None for an absent bound; the class does
    meta = make(ge=span.ge, gt=span.gt, le=span.le, description=span.description)
    return Annotated[typ.__origin__, meta]


@functools.cache
def _layer_schema() -> type:
    """A struct for one layer: every key optional (UNSET when the layer does not give it),
    unknown keys and sections refused. Built on first use."""
    # lazy: msgspec loads when a layer is first checked, not with the dataclasses
    import msgspec
    from msgspec import UNSET, UnsetType

    sections = []
    for name, sec_type in _sections().items():
        fields = [(k, _checked(typ) | UnsetType, UNSET) for k, typ in _keys(sec_type).items()]
        layer = msgspec.defstruct(
            f"{sec_type.__name__}Layer", fields, forbid_unknown_fields=True, frozen=True, module=__name__
        )
        sections.append((name, layer | UnsetType, UNSET))
    return msgspec.defstruct("ConfigLayer", sections, forbid_unknown_fields=True, frozen=True, module=__name__)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _prepare(value: Any, typ: Any) -> Any:
    """Text as a person writes it (the environment, flags, or a string in the file) made
    into what the schema wants: "a, b" -> a list, "yes" -> true, " 5 " -> 5. Only text is
    read loosely: a TOML 2.0 for an integer or 1 for a boolean is a wrong type."""
    base = _base(typ)
    if base == tuple[str, ...]:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        if isinstance(value, (list, tuple)):
            return [x.strip() if isinstance(x, str) else x for x in value]
    elif isinstance(value, str):
        if base is bool:
            word = value.strip().lower()
            return True if word in _TRUE else False if word in _FALSE else value
        if base in (int, float):
            # lazy: msgspec loads when a layer is first checked
            import msgspec

            try:  # msgspec's lax mode reads numbers from text; the layer is checked strictly
                return msgspec.convert(value.strip(), base, strict=False)
            except (msgspec.ValidationError, UnicodeError):
                return value  # refused below, with the key's name
    return value


def _is_text(v: str) -> bool:
    """False for lone surrogates: what os.environ makes of bytes that are not UTF-8."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _show(v: Any) -> str:
    try:
        s = repr(v)
    except ValueError:  # an int too long to print
        return "an integer of more than 4300 digits"
    return s if len(s) <= 60 else s[:57] + "..."


_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def _explain(e: Exception, updates: Mapping[str, Any], origin: str) -> str:
    """msgspec's "Expected `int` >= 1 - at `$.kube.page_size`" as the user's one line."""
    m = _AT.match(str(e).splitlines()[0] if str(e) else "")
    what, path = (m.group("what"), m.group("path") or "") if m else (str(e), "")
    steps = re.findall(r"\.(\w+)", path)
    sections = _sections()
    unknown = re.match(r"Object contains unknown field `(.*)`$", what)
    if unknown and not steps:
        known = ", ".join(sorted(sections))
        return f"{origin}: unknown section [{unknown.group(1)}] (known: {known})"
    if unknown:
        sec = steps[0]
        known = ", ".join(sorted(_keys(sections[sec])))
        return f"{origin}: unknown key {sec}.{unknown.group(1)} (known in [{sec}]: {known})"
    if len(steps) == 1:
        return f"{origin}: [{steps[0]}] must be a table of keys"
    if len(steps) >= 2 and steps[0] in sections and steps[1] in _keys(sections[steps[0]]):
        sec, key = steps[0], steps[1]
        typ = _keys(sections[sec])[key]
        raw = updates[sec][key]
        meta = getattr(typ, "__metadata__", ())
        base = _base(typ)
        if meta and what.startswith("Expected `") and ", got" not in what:  # a bound, not a type
            return f"{origin}: {sec}.{key} must be {meta[0].description}, got {_show(raw)}"
        words = "a list of strings" if base == tuple[str, ...] else _WORDS.get(base, "valid")
        return f"{origin}: {sec}.{key} must be {words}, got {_show(raw)}"
    return f"{origin}: {what}"  # not expected: msgspec's own words, still one line


def _apply(cfg: Config, updates: Mapping[str, Any], origin: str) -> Config:
    sections = _sections()
    prepared: dict[str, Any] = {}
    for sec_name, values in updates.items():
        if sec_name in sections and isinstance(values, Mapping):
            keys = _keys(sections[sec_name])
            values = {k: _prepare(v, keys[k]) if k in keys else v for k, v in values.items()}
        prepared[sec_name] = values
    # lazy: msgspec loads when a layer is first checked
    import msgspec

    try:
        layer: Any = msgspec.convert(prepared, _layer_schema(), strict=True)
    except msgspec.ValidationError as e:
        raise ConfigError(_explain(e, updates, origin).replace("\n", " ")) from None
    except UnicodeError:
        raise ConfigError(f"{origin}: a value is not UTF-8 text") from None
    from msgspec import UNSET  # lazy: with msgspec above

    changed: dict[str, Any] = {}
    for sec_name in sections:
        given = getattr(layer, sec_name)
        if given is UNSET:
            continue
        new_values: dict[str, Any] = {}
        for key in _keys(sections[sec_name]):
            value = getattr(given, key)
            if value is UNSET:
                continue
            validate = _VALIDATORS.get(f"{sec_name}.{key}")
            if validate is not None:
                try:
                    value = validate(value)
                except ValueError as e:
                    raise ConfigError(f"{origin}: {sec_name}.{key}: {e}") from None
            new_values[key] = value
        if new_values:
            changed[sec_name] = dataclasses.replace(getattr(cfg, sec_name), **new_values)
    return dataclasses.replace(cfg, **changed) if changed else cfg


def from_env(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """AKSNET_<SECTION>_<KEY>=value -> {section: {key: value}}; AKSNET_CONFIG is the file path."""
    out: dict[str, dict[str, str]] = {}
    sections = _sections()
    for name, value in env.items():
        if not name.startswith("AKSNET_") or name == "AKSNET_CONFIG":
            continue
        rest = name[len("AKSNET_") :].lower()
        if not _is_text(value):
            raise ConfigError(f"environment: {name} is not UTF-8 text (bytes {_show(value)}); set it again as UTF-8")
        for sec in sections:
            if rest.startswith(sec + "_"):
                out.setdefault(sec, {})[rest[len(sec) + 1 :]] = value
                break
        else:
            raise ConfigError(
                f"environment: unknown variable {name} (expected AKSNET_<SECTION>_<KEY>, sections: {', '.join(sorted(sections))})"
            )
    return out


def _read_file(path: Path) -> dict[str, Any]:
    """The TOML file as a dict, or ConfigError: unreadable, not UTF-8, not TOML, absurd."""
    # lazy: tomllib loads only when there is a file to read
    import tomllib

    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {e.start}: {data[e.start : e.start + 1]!r}); save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    except ValueError as e:  # an integer of more than 4300 digits (sys.int_max_str_digits)
        if "digits" in str(e):
            raise ConfigError(f"{path}: an integer has more than 4300 digits; no setting takes one") from None
        raise ConfigError(f"{path}: not valid TOML: {str(e).splitlines()[0] if str(e) else e!r}") from None


def load(
    flags: Mapping[str, Mapping[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Config:
    """Build the Config from all layers. `flags` holds only the flags the user gave.
    Raises ConfigError, one line, for anything the user must fix."""
    try:
        return _load(flags, os.environ if env is None else env, path)
    except ConfigError as e:
        msg = str(e)
        if any(c in msg for c in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):  # what splitlines() splits on
            raise ConfigError(repr(msg)[1:-1]) from None  # quoted text with line breaks: escaped, one line
        raise


def _load(flags: Mapping[str, Mapping[str, Any]] | None, env: Mapping[str, str], path: Path | None) -> Config:
    cfg = Config()
    file_path = path or default_path(env)
    explicit = path is not None or bool(env.get("AKSNET_CONFIG"))
    try:
        exists = file_path.exists()
    except (OSError, ValueError) as e:  # a path with a NUL byte, a directory we may not enter
        raise ConfigError(f"{file_path}: cannot read: {e}") from None
    if exists:
        cfg = _apply(cfg, _read_file(file_path), str(file_path))
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
