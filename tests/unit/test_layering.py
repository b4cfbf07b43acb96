"""probes/ is headless: importing every module must not load textual (or the tui package)."""

import pkgutil
import subprocess
import sys

import probes


def test_probes_never_loads_textual():
    mods = [m.name for m in pkgutil.walk_packages(probes.__path__, "probes.")]
    assert "probes.kube.source" in mods
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k == 'textual' or k.startswith(('textual.', 'tui')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"probes imported UI modules: {out.stdout}"


def test_cli_lab_and_config_do_not_load_textual():
    code = "import sys, tui.cli; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
