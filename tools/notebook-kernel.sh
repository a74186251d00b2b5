#!/usr/bin/env bash
# Installs the "Rust (epic)" Jupyter kernel, and nothing twice (run tools/setup.sh first):
#   - evcxr_jupyter (pinned) by `cargo install --locked` into ~/.cache/epic (or
#     $EPIC_CACHE): about 12 minutes the first time on 2 cores, then kept for every
#     checkout on this machine;
#   - Jupyter (notebook, nbconvert, pinned) into the project's venv .venv;
#   - the kernelspec .venv/share/jupyter/kernels/epic-rust, whose env gives evcxr
#     what libtorch needs (LD_LIBRARY_PATH, LIBTORCH, the venv) and a persistent
#     EVCXR_TMPDIR under .notebook/evcxr, so that a second run does not recompile
#     epic's dependencies (libtorch's glue among them).
# Safe to run again: each step checks first.
set -euo pipefail
export PIP_NO_CACHE_DIR=1  # the venv is the one copy of each wheel
cd "$(dirname "$0")/.."
repo=$(pwd -P)

EVCXR_VERSION=0.22.0
JUPYTER_PINS=(notebook==7.6.5 nbconvert==7.17.2 nbclient==0.11.0 nbformat==5.11.1
              jupyter-client==8.10.0 jupyter-core==5.9.1 ipykernel==7.4.0)
cache=${EPIC_CACHE:-$HOME/.cache/epic}
root="$cache/evcxr_jupyter-$EVCXR_VERSION"
bin="$root/bin/evcxr_jupyter"

log() { printf '[notebook-kernel] %s\n' "$*"; }

[ -x .venv/bin/python ] && [ -e .venv/libtorch/lib/libtorch_cpu.so ] || { log "run tools/setup.sh first"; exit 1; }
command -v flock >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux; }

if [ -x "$bin" ] && grep -q "^\"evcxr_jupyter $EVCXR_VERSION " "$root/.crates.toml" 2>/dev/null; then
    log "evcxr_jupyter $EVCXR_VERSION already in $root"
else
    log "installing evcxr_jupyter $EVCXR_VERSION into $root (first time: about 12 minutes)"
    start=$(date +%s)
    cargo install --locked --force --root "$root" "evcxr_jupyter@$EVCXR_VERSION"
    log "evcxr_jupyter installed in $(( $(date +%s) - start )) s"
fi

if .venv/bin/python - "${JUPYTER_PINS[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(any(version(p.split("==")[0]) != p.split("==")[1] for p in sys.argv[1:]))
PY
then
    log "Jupyter already in .venv"
else
    log "installing Jupyter into .venv: ${JUPYTER_PINS[*]}"
    .venv/bin/pip install --quiet --progress-bar off "${JUPYTER_PINS[@]}"
fi

libtorch_lib=$(cd .venv/libtorch/lib && pwd -P)
cargo_bin=$(dirname "$(command -v cargo)")
kernel_dir=.venv/share/jupyter/kernels/epic-rust
mkdir -p "$kernel_dir" .notebook/evcxr
.venv/bin/python - "$kernel_dir/kernel.json" <<PY
import json, sys
spec = {
    "argv": ["$repo/tools/evcxr-kernel.sh", "--control_file", "{connection_file}"],
    "display_name": "Rust (epic)",
    "language": "rust",
    "interrupt_mode": "message",
    "env": {
        "EPIC_EVCXR_BIN": "$bin",
        "EPIC_EVCXR_DIR": "$repo/.notebook/evcxr",
        "LD_LIBRARY_PATH": "$libtorch_lib",
        "LIBTORCH": "$repo/.venv/libtorch",
        "LIBTORCH_CXX11_ABI": "1",
        "VIRTUAL_ENV": "$repo/.venv",
        "PATH": "$repo/.venv/bin:$cargo_bin:/usr/local/bin:/usr/bin:/bin",
    },
}
json.dump(spec, open(sys.argv[1], "w"), indent=1)
PY
log "kernel \"Rust (epic)\" (epic-rust): $kernel_dir/kernel.json"

# The "Rhai (epic)" kernel: epic itself (`epic kernel`), no compiler at run time.
# The kernelspec points at this checkout's debug binary, which `make test` builds anyway.
log "building epic for the \"Rhai (epic)\" kernel"
cargo build --quiet --bin epic
target/debug/epic kernel install --prefix "$repo/.venv"

# The "Rust (epic)" kernel compiles epic_nb (epic, libtorch's bindings, Rhai and
# every other dependency) at a notebook's first `:dep` cell: minutes on a fresh
# machine. Compile it here instead, through the kernel itself, into the slot a
# first kernel takes (slot-0), so that a notebook's first cell takes seconds.
# Done again only when epic's sources changed since the last time.
stamp=.notebook/evcxr/slot-0.built
if [ -f "$stamp" ] && [ -z "$(find src epic-nb/src Cargo.toml Cargo.lock build.rs epic-nb/Cargo.toml -newer "$stamp" -print -quit)" ]; then
    log "epic_nb already compiled for the \"Rust (epic)\" kernel"
else
    log "compiling epic_nb for the \"Rust (epic)\" kernel (first time: several minutes)"
    start=$(date +%s)
    JUPYTER_PATH="$repo/.venv/share/jupyter" .venv/bin/python - <<'PY'
import nbformat
from nbclient import NotebookClient

# The notebooks' own first cells, from their own folder: the same crate, the
# same path, so that their build finds these artifacts.
nb = nbformat.v4.new_notebook()
nb.cells = [nbformat.v4.new_code_cell(':dep epic_nb = { path = "../../epic-nb" }'),
            nbformat.v4.new_code_cell("use epic_nb::{epic, tch};")]
NotebookClient(nb, kernel_name="epic-rust", timeout=3600,
               resources={"metadata": {"path": "examples/notebooks"}}).execute()
PY
    touch "$stamp"
    log "epic_nb compiled in $(( $(date +%s) - start )) s"
fi
