#!/usr/bin/env bash
# Builds epic against a PyTorch other than the project venv's: one a user already
# has (a conda env, a cluster module), or a release wheel from the registry.
#
#   tools/flavour.sh --python PY   CARGO_ARGS…   # the torch that PY imports
#   tools/flavour.sh --torch DIR   CARGO_ARGS…   # a torch/ folder (with lib/, include/)
#   tools/flavour.sh --wheel 2.11  CARGO_ARGS…   # the registry's torch==2.11.0, unpacked
#                                                # into target/torch-flavours/ (no deps)
#   e.g. tools/flavour.sh --python /opt/conda/bin/python build --release
#
# PyTorch 2.11, 2.12 and 2.13 are supported, with tch 0.24, 0.25 and 0.26. Each
# tch release binds exactly one libtorch and Cargo admits one package per native
# `links` value, so a flavour cannot be a cargo feature. Instead the flavour is its
# own package, target/flavours/torch-X.Y/: symbolic links to this checkout's
# sources, and a copy of Cargo.toml and Cargo.lock that differ in the tch line
# alone. Its build goes to target/flavours/torch-X.Y/target/, so it never
# invalidates the default build. The binary's rpath names that libtorch folder
# (build.rs); on another machine set LD_LIBRARY_PATH to its torch/lib instead.
#
# Prints the flavour's target folder on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

die() { printf 'flavour: %s\n' "$*" >&2; exit 2; }
log() { printf '[flavour] %s\n' "$*" >&2; }

SUPPORTED="2.11 (tch 0.24), 2.12 (tch 0.25) and 2.13 (tch 0.26)"
tch_for() {
    case "$1" in
        2.11) echo 0.24 ;;
        2.12) echo 0.25 ;;
        2.13) echo 0.26 ;;
        *) return 1 ;;
    esac
}

[ $# -ge 2 ] || die "usage: tools/flavour.sh --python PY | --torch DIR | --wheel X.Y  CARGO_ARGS…"
how=$1 what=$2
shift 2

case "$how" in
    --python)
        command -v "$what" >/dev/null 2>&1 || die "no Python at '$what'"
        # find_spec does not import torch: it works without CUDA, numpy or a GPU.
        torch_dir=$("$what" -c 'import importlib.util, os, sys
s = importlib.util.find_spec("torch")
sys.exit("no torch module") if s is None else print(os.path.dirname(s.origin))') \
            || die "'$what' has no torch (pip install torch==2.13.0, or pass --torch DIR)"
        ;;
    --torch)
        torch_dir=$what
        ;;
    --wheel)
        tch_for "$what" >/dev/null || die "PyTorch $what is not supported: epic builds against $SUPPORTED"
        wheel_dir=target/torch-flavours
        torch_dir=$wheel_dir/$what/torch
        if [ ! -f "$torch_dir/lib/libtorch_cpu.so" ]; then
            mkdir -p "$wheel_dir/wheels"
            wheel=$(ls "$wheel_dir"/wheels/torch-"$what".0-*.whl 2>/dev/null | head -n1 || true)
            if [ -z "$wheel" ]; then
                log "downloading torch==$what.0 from the registry (no dependencies, about 0.5 GB)"
                PIP_NO_CACHE_DIR=1 "${PIP:-$root/.venv/bin/pip}" download --quiet --progress-bar off --no-deps \
                    -d "$wheel_dir/wheels" "torch==$what.0"
                wheel=$(ls "$wheel_dir"/wheels/torch-"$what".0-*.whl | head -n1)
            fi
            log "unpacking lib/, include/ and share/ of $(basename "$wheel")"
            rm -rf "$wheel_dir/$what.tmp"
            mkdir -p "$wheel_dir/$what.tmp"
            unzip -q "$wheel" 'torch/lib/*' 'torch/include/*' 'torch/share/*' 'torch/version.py' \
                -d "$wheel_dir/$what.tmp"
            rm -rf "$wheel_dir/${what:?}"
            mv "$wheel_dir/$what.tmp" "$wheel_dir/$what"
            # What the build needs is unpacked; the wheel is another 0.5 GB on disk.
            rm -f "$wheel"
        fi
        ;;
    *)
        die "unknown '$how': use --python PY, --torch DIR or --wheel X.Y"
        ;;
esac

[ -f "$torch_dir/lib/libtorch_cpu.so" ] || die "no lib/libtorch_cpu.so under '$torch_dir': not a torch folder"
torch_dir=$(cd "$torch_dir" && pwd -P)
version=$(sed -n "s/^__version__ *= *['\"]\([0-9]*\.[0-9]*\).*/\1/p" "$torch_dir/version.py" 2>/dev/null || true)
[ -n "$version" ] || version=$(sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p' "$torch_dir/build-version" 2>/dev/null || true)
[ -n "$version" ] || die "cannot tell the PyTorch version of '$torch_dir' (no version.py, no build-version)"
tch=$(tch_for "$version") || die "PyTorch $version (at $torch_dir) is not supported: epic builds against $SUPPORTED"
log "PyTorch $version at $torch_dir: tch $tch"

flavour=$root/target/flavours/torch-$version
mkdir -p "$flavour"
# Every top-level entry of the checkout, except the manifest, the lock, build
# outputs and local state, is a link: tests, benches, assets and fixtures resolve.
for entry in "$root"/* "$root"/.venv; do
    name=$(basename "$entry")
    case "$name" in Cargo.toml | Cargo.lock | target | outputs) continue ;; esac
    [ -e "$flavour/$name" ] || ln -s "$entry" "$flavour/$name"
done
grep -q '^tch = "0.26"$' Cargo.toml || die "Cargo.toml has no line 'tch = \"0.26\"' to replace"
sed "s/^tch = \"0.26\"$/tch = \"$tch\"/" Cargo.toml >"$flavour/Cargo.toml.new"
printf '\n# A flavour: its own workspace, not a member of the checkout above.\n[workspace]\n' \
    >>"$flavour/Cargo.toml.new"
cmp -s "$flavour/Cargo.toml.new" "$flavour/Cargo.toml" 2>/dev/null \
    && rm "$flavour/Cargo.toml.new" || mv "$flavour/Cargo.toml.new" "$flavour/Cargo.toml"
# The checkout's lock pins every other crate; cargo moves only tch and torch-sys.
[ -f "$flavour/Cargo.lock" ] && [ ! Cargo.lock -nt "$flavour/Cargo.lock" ] || cp Cargo.lock "$flavour/Cargo.lock"

export LIBTORCH=$torch_dir
export LIBTORCH_CXX11_ABI=1
export CARGO_TARGET_DIR=$flavour/target
(cd "$flavour" && cargo "$@")
echo "$CARGO_TARGET_DIR"
