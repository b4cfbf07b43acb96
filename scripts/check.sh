#!/usr/bin/env bash
# The static checks CI runs after the tests (the tools come with the test extras that
# scripts/test.sh installs): ruff lint and format, mypy on probes/ (strict on the pure
# logic and the engine), import-linter's layer contracts.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/ruff ] || .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
echo "ruff check";   .venv/bin/ruff check .
echo "ruff format";  .venv/bin/ruff format --check .
echo "mypy";         .venv/bin/mypy
echo "lint-imports"; .venv/bin/lint-imports
