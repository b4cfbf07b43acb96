"""`aksnet-top config`: the configuration in effect as valid TOML, each value with a
comment saying where it came from (default, the file, an AKSNET_* variable, a flag) and
the file that was read at the top. Its output can be saved as a config file."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from probes import config as configmod


def toml_value(v: Any) -> str:
    """One value in TOML: strings quoted (JSON escapes are TOML escapes), lists in brackets."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Path):
        return json.dumps(str(v), ensure_ascii=False)
    raise TypeError(f"no TOML form for {type(v).__name__}")


def env_name(section: str, key: str) -> str:
    return f"AKSNET_{section.upper()}_{key.upper()}"


def render(
    cfg: configmod.Config,
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The TOML text for `cfg`, built from the same layers `configmod.load` read."""
    env = os.environ if env is None else env
    file_path = path or configmod.default_path(env)
    file_data: dict[str, Any] = {}
    try:
        exists = file_path.exists()
    except (OSError, ValueError):
        exists = False
    if exists:
        file_data = configmod._read_file(file_path)
        lines = [f"# aksnet-top configuration in effect; file read: {file_path}"]
    else:
        lines = [f"# aksnet-top configuration in effect; no file read ({file_path} does not exist)"]
    lines.append("# layers: defaults < file < AKSNET_<SECTION>_<KEY> environment < flags")
    env_layer = configmod.from_env(env)
    section = ""
    for key, typ, _default in configmod.describe():
        sec, name = key.split(".")
        if sec != section:
            section = sec
            lines += ["", f"[{sec}]"]
        if flags and name in flags.get(sec, {}):
            origin = "flag"
        elif name in env_layer.get(sec, {}):
            origin = f"env {env_name(sec, name)}"
        elif isinstance(file_data.get(sec), dict) and name in file_data[sec]:
            origin = f"file {file_path}"
        else:
            origin = "default"
        value = getattr(getattr(cfg, sec), name)
        comment = f"# from {origin}" + ("" if origin.startswith("env") else f" ({typ}; env {env_name(sec, name)})")
        if value is None:
            lines.append(f"# {name} is not set  {comment}")
        else:
            lines.append(f"{name} = {toml_value(value)}  {comment}")
    return "\n".join(lines) + "\n"
