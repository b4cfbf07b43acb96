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


def test_no_import_cycles():
    """No module of probes or tui imports, directly or through others, a module that
    imports it back: a lazy import inside a function counts (grimp reads them all)."""
    import grimp

    graph = grimp.build_graph("probes", "tui", cache_dir=None)  # a cache can outlive a change
    cycles = sorted(
        {
            tuple(sorted((m, other)))
            for m in graph.modules
            for other in graph.find_modules_directly_imported_by(m)
            if other != m and graph.chain_exists(importer=other, imported=m)
        }
    )
    assert cycles == [], f"import cycles: {cycles}"
