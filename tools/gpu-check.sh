#!/usr/bin/env bash
# epic's GPU check, run on the GPU machine from the device bundle
# (`make device-bundle`), or on any machine from a checkout:
#
#   tools/gpu-check.sh OUT [--device cuda|cuda:N|cpu] [--tiny]
#
# Writes OUT/gpu_check.json and OUT/gpu_check.log:
#   - the CUDA device's name and capability (nvidia-smi, and epic's own view);
#   - the cross-check of EPIC's math (scripts/crosscheck.rhai) on the device;
#   - the demo on the device against the same demo on the CPU: purities within
#     1e-4, ≥ 99 % of top-5 prototype slots equal, the same explaining channels,
#     logit changes below 1e-4;
#   - backbone throughput at batch 256 in f32, bf16 and f16 (Lite0, and ResNet-50
#     with random weights where python3 has torchvision), the loader's
#     decode + transform rate on all cores, batch_size auto's choice;
#   - an Adam step at C = 512 and 2048 (fast and autograd), top-m selection over
#     1.28M sums at C = 512, GPU memory after each.
# Exits non-zero if any part fails. `--tiny` shrinks every size (a CPU test runs
# it so, tests/gpu_check.rs); the thresholds stay.
#
# Finds: the epic binary ($EPIC, else ./bin/epic in a bundle, else the checkout's
# target/release or target/debug), libtorch (python3's torch, added to
# LD_LIBRARY_PATH where the binary's rpath does not reach one), the Lite0 weights
# and Fashion-MNIST (the bundle's, else the setup's).
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: tools/gpu-check.sh OUT [--device cuda|cpu] [--tiny]" >&2; exit 2; }
out=$1
shift
device=cuda
tiny=false
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device=$2; shift 2 ;;
        --tiny) tiny=true; shift ;;
        *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/gpu_check.log
: >"$log"
say() { printf '%s\n' "$*" | tee -a "$log"; }
started=$(date +%s)

# A bundle holds bin/ and scripts/ side by side; a checkout holds tools/ and scripts/.
here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/bin/epic" ]; then root=$here; else root=$(cd "$here/.." && pwd); fi
cd "$root"
epic=${EPIC:-}
for candidate in "$root/bin/epic" "$root/target/release/epic" "$root/target/debug/epic"; do
    [ -n "$epic" ] && break
    [ -x "$candidate" ] && epic=$candidate
done
[ -x "$epic" ] || { say "gpu-check: no epic binary (set EPIC, or build one)"; exit 2; }
[ -d "$root/bundle/weights" ] && export EPIC_LITE0_WEIGHTS=$root/bundle/weights/efficientnet-lite0-57934424.pth
[ -d "$root/bundle/fashion-mnist" ] && export EPIC_FASHION_MNIST=$root/bundle/fashion-mnist

py=python3
[ -x "$root/.venv/bin/python" ] && py=$root/.venv/bin/python
if ! "$epic" --version >/dev/null 2>&1; then
    # The rpath names the build machine's libtorch: use this machine's torch instead.
    torch_lib=$("$py" -c 'import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec("torch").origin), "lib"))' 2>/dev/null || true)
    [ -d "$torch_lib" ] && export LD_LIBRARY_PATH=$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
"$epic" --version >/dev/null 2>&1 || { say "gpu-check: $epic does not start: $("$epic" --version 2>&1 | head -n3)"; exit 2; }

say "epic: $epic ($("$epic" --version))"
say "libtorch: ${LD_LIBRARY_PATH:-found through the rpath of the binary}"
if command -v nvidia-smi >/dev/null 2>&1; then
    say "nvidia-smi: $(nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader 2>&1 | head -n1)"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
step() { # step NAME COMMAND…: runs it, logs its output, records its status
    local name=$1 t0 rc
    shift
    t0=$(date +%s%N)
    say "== $name"
    "$@" >>"$log" 2>&1
    rc=$?
    say "   $name: exit $rc in $((($(date +%s%N) - t0) / 1000000)) ms"
    [ $rc -eq 0 ] || failed=1
    return $rc
}
tiny_arg=()
$tiny && tiny_arg=(tiny=true)

step crosscheck "$epic" run --device "$device" scripts/crosscheck.rhai
crosscheck=$?
step "demo on the CPU" "$epic" run --device cpu scripts/gpu_check.rhai part=demo out="$work/cpu" "${tiny_arg[@]}"
step "demo on $device" "$epic" run --device "$device" scripts/gpu_check.rhai part=demo out="$work/dev" "${tiny_arg[@]}"

extra=()
# ResNet-50 with random weights, from torchvision where this Python has it
# (throughput does not depend on the weights; no model hub is reached).
if ! $tiny && "$py" -c 'import torch, torchvision' >/dev/null 2>&1; then
    "$py" -c "import torch, torchvision; torch.manual_seed(0); torch.save(torchvision.models.resnet50().state_dict(), '$work/resnet50.pth')" \
        >>"$log" 2>&1 && extra+=(resnet50="$work/resnet50.pth")
fi
# The CC0 photos, each listed many times, as one class folder.
photos=$root/tests/fixtures/efficientnet_lite0/photos
[ -d "$root/bundle/photos" ] && photos=$root/bundle/photos
if [ -d "$photos" ]; then
    mkdir -p "$work/photos/cc0"
    copies=$($tiny && echo 2 || echo 200)
    for f in "$photos"/*; do
        for i in $(seq 1 "$copies"); do ln -s "$f" "$work/photos/cc0/$i-$(basename "$f")"; done
    done
    extra+=(photos="$work/photos")
fi
step "measurements on $device" "$epic" run --device "$device" scripts/gpu_check.rhai part=costs out="$out" \
    cpu="$work/cpu/state.json" dev="$work/dev/state.json" crosscheck="$crosscheck" "${tiny_arg[@]}" "${extra[@]}"

say "gpu-check: $([ $failed -eq 0 ] && echo passed || echo FAILED) in $(($(date +%s) - started)) s; $out/gpu_check.json"
exit $failed
