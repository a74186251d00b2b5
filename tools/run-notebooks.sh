#!/usr/bin/env bash
# Executes examples/notebooks/*.ipynb headlessly, each with the kernel its
# metadata names ("Rust (epic)" or "Rhai (epic)", both from make notebook-kernel),
# into .notebook/executed/. `jupyter nbconvert --execute`
# exits non-zero when a cell errors (the evcxr REPL would exit 0). Prints the
# time of each notebook and of each of its cells.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.notebook/executed
mkdir -p "$out"
for name in "${@:-quickstart rhai_cells epic_rhai}"; do
  for nb in $name; do
    start=$(date +%s)
    echo "[notebooks] executing examples/notebooks/$nb.ipynb"
    .venv/bin/jupyter nbconvert --to notebook --execute \
        --ExecutePreprocessor.timeout=3600 \
        --output-dir "$out" "examples/notebooks/$nb.ipynb"
    echo "[notebooks] $nb: $(( $(date +%s) - start )) s"
    .venv/bin/python - "$out/$nb.ipynb" <<'PY'
import json, sys
from datetime import datetime
cells = json.load(open(sys.argv[1]))["cells"]
for i, c in enumerate(cells):
    t = c.get("metadata", {}).get("execution", {})
    if c["cell_type"] == "code" and "shell.execute_reply" in t:
        a = datetime.fromisoformat(t["iopub.execute_input"].replace("Z", "+00:00"))
        b = datetime.fromisoformat(t["shell.execute_reply"].replace("Z", "+00:00"))
        first = "".join(c["source"]).splitlines()[0][:70]
        print(f"[notebooks]   cell {i:2}: {(b - a).total_seconds():7.1f} s  {first}")
PY
  done
done
