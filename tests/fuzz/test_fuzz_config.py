"""Fuzzing the configuration (file, environment, flags) and the scenario files: only
ConfigError / ScenarioError may escape, each one line."""

from __future__ import annotations

import copy
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes import config as configmod
from probes.lab.scenario import ScenarioError, parse_scenario, read_document
from tests.fuzz.strategies import SCALARS, json_like

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
KEYS = [k for k, _t, _d in configmod.describe()]
SECTIONS = sorted({k.split(".")[0] for k in KEYS})
NAMES = sorted({k.split(".")[1] for k in KEYS})


def _toml_value():
    return st.recursive(
        st.booleans()
        | st.integers(min_value=-(10**20), max_value=10**20)
        | st.floats(allow_nan=True, allow_infinity=True).map(repr)
        | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3),
        max_leaves=6,
    )


def _toml_literal(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_literal(x) for x in v) + "]"
    if (
        isinstance(v, str)
        and v in ("nan", "inf", "-inf")
        or (isinstance(v, str) and v.replace(".", "").replace("-", "").replace("e", "").replace("+", "").isdigit())
    ):
        return v
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _load(path: Path | None, env: dict[str, str], flags=None) -> None:
    try:
        cfg = configmod.load(flags=flags, env=env, path=path)
    except configmod.ConfigError as e:
        assert str(e) and "\n" not in str(e), str(e)
        return
    assert isinstance(cfg, configmod.Config)


@FUZZ
@given(
    body=st.lists(
        st.tuples(
            st.sampled_from(SECTIONS) | st.text(max_size=8), st.sampled_from(NAMES) | st.text(max_size=8), _toml_value()
        ),
        max_size=6,
    )
)
def test_config_files(tmp_path_factory, body):
    lines = []
    for sec, key, value in body:
        lines += [f'["{sec}"]'.replace("\\", ""), f'"{key.replace(chr(92), "")}" = {_toml_literal(value)}']
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    _load(path, {})


@FUZZ
@given(raw=st.binary(max_size=300))
def test_config_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_bytes(raw)
    _load(path, {})


@FUZZ
@given(
    env=st.dictionaries(
        st.sampled_from([f"AKSNET_{k.replace('.', '_').upper()}" for k in KEYS])
        | st.text(max_size=12).map("AKSNET_".__add__),
        st.text(max_size=30),
        max_size=4,
    ),
    flags=st.dictionaries(
        st.sampled_from(SECTIONS), st.dictionaries(st.sampled_from(NAMES), SCALARS, max_size=3), max_size=2
    ),
)
def test_environment_and_flags(env, flags):
    _load(None, {"HOME": "/nonexistent", **env}, flags)


HEALTHY = read_document("healthy")[0]
SCENARIO_KEYS = sorted({k for d in (HEALTHY, *HEALTHY.values()) if isinstance(d, dict) for k in d}) + [
    "nodes", "timeline", "at", "action", "node", "dns", "egress", "azure", "routes", "age", "count",
]  # fmt: skip


def _parse(data) -> None:
    try:
        sc = parse_scenario(data, "fuzz.yaml")
    except ScenarioError as e:
        assert str(e).startswith("fuzz.yaml") and "\n" not in str(e), str(e)
        return
    assert sc.cluster is not None


@FUZZ
@given(
    path=st.lists(st.sampled_from(SCENARIO_KEYS) | st.integers(0, 3), min_size=1, max_size=3),
    value=json_like(SCENARIO_KEYS, leaves=10),
)
def test_scenario_mutations(path, value):
    """The healthy scenario with one value (anywhere) replaced by anything."""
    doc = copy.deepcopy(HEALTHY)
    at = doc
    for step in path[:-1]:
        nxt = (
            at.get(step)
            if isinstance(at, dict)
            else at[step]
            if isinstance(at, list) and isinstance(step, int) and step < len(at)
            else None
        )
        if not isinstance(nxt, (dict, list)):
            break
        at = nxt
    last = path[-1]
    if isinstance(at, dict):
        at[last] = value
    elif isinstance(at, list) and isinstance(last, int) and last < len(at):
        at[last] = value
    _parse(doc)


@FUZZ
@given(doc=json_like(SCENARIO_KEYS, leaves=30))
def test_scenario_any_document(doc):
    _parse(doc)


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_scenario_files(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("sc") / "fuzz.yaml"
    path.write_bytes(raw)
    try:
        data, _, _ = read_document(str(path))
    except ScenarioError as e:
        assert "\n" not in str(e)
        return
    _parse(data)
