#!/usr/bin/env bash
# The static checks CI runs after the tests (the tools come with the test extras that
# scripts/test.sh installs): ruff lint and format, mypy on probes/ (strict on the pure
# logic and the engine), import-linter's layer contracts.
set -euo pipefail
cd "$(dirname "$0")/.."
# the project's venv; AKSNET_VENV points elsewhere (a git worktree sharing one venv)
V="${AKSNET_VENV:-.venv}"
[ -x "$V/bin/ruff" ] || "$V/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
echo "ruff check";   "$V/bin/ruff" check .
echo "ruff format";  "$V/bin/ruff" format --check .
echo "mypy";         "$V/bin/mypy"
echo "lint-imports"; PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$V/bin/lint-imports"
