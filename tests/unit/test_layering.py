"""probes/ is headless: importing every module must not load textual (or the tui package).
No import cycles; an import inside a function says why it is there (`# lazy: ...`)."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import probes

ROOT = Path(__file__).resolve().parents[2]
LAZY = "# lazy:"


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


def lazy_offenders(*dirs: Path) -> list[str]:
    """Function-level imports without a `# lazy:` comment: on the import's line, or in the
    comment lines right above it. Consecutive imports in a function are one group: the
    comment above the first covers them all."""
    offenders = []
    for path in sorted(p for d in dirs for p in d.rglob("*.py")):
        src = path.read_text("utf-8")
        lines = src.splitlines()
        starts: dict[int, int] = {}  # every line of a function-level import -> its first line
        nodes = []
        for fn in ast.walk(ast.parse(src)):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        nodes.append(node)
                        for ln in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                            starts[ln] = node.lineno
        for node in nodes:
            ok = LAZY in lines[node.lineno - 1]
            ln = node.lineno - 1  # 1-based: the line above
            while not ok and ln >= 1:
                text = lines[ln - 1].strip()
                if ln in starts:  # the group's previous import
                    ok = LAZY in lines[starts[ln] - 1]
                    ln = starts[ln] - 1
                elif text.startswith("#"):
                    ok = text.startswith(LAZY)
                    ln -= 1
                else:
                    break
            if not ok:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return sorted(set(offenders))


def test_function_level_imports_say_why_they_are_lazy():
    """An import inside a function is there for start-up time or a heavy optional
    dependency, never by habit: a `# lazy: why` comment says so (same line or above)."""
    offenders = lazy_offenders(ROOT / "probes", ROOT / "tui")
    assert offenders == [], f"function-level imports without a '{LAZY} why' comment: {offenders}"


def test_one_class_per_name():
    """A class name means one thing across probes/ and tui/ (a reader never has to ask
    which `Store` or `Outcome` an import brings)."""
    import ast
    from collections import defaultdict
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    where: dict[str, list[str]] = defaultdict(list)
    for pkg in ("probes", "tui"):
        for f in sorted((root / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.ClassDef):
                    where[node.name].append(f"{f.relative_to(root)}:{node.lineno}")
    twice = {name: places for name, places in where.items() if len(places) > 1}
    assert twice == {}
