"""Write the JSON Schema of the lab's scenario files to docs/scenario.schema.json.

    .venv/bin/python scripts/scenario_schema.py          # write it
    .venv/bin/python scripts/scenario_schema.py --check  # exit 1 if the file is not current

The schema is generated from the msgspec structs the loader decodes with
(probes/lab/scenario/schema.py and the *spec.py modules): editors can validate and
complete scenario files with it, and it can never drift from what the lab accepts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes.lab.scenario.schema import json_schema  # noqa: E402

OUT = ROOT / "docs" / "scenario.schema.json"


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text("utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is not current: run scripts/scenario_schema.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, "utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
