#!/usr/bin/env bash
# The "Rust (epic)" kernel (installed by tools/notebook-kernel.sh): evcxr_jupyter
# with a persistent EVCXR_TMPDIR, so that epic's dependencies compile once. Two
# kernels must not share one (each writes its crate there), so each running
# kernel takes the first free slot $EPIC_EVCXR_DIR/slot-N, locked while it runs.
set -euo pipefail
: "${EPIC_EVCXR_BIN:?set by the kernelspec}" "${EPIC_EVCXR_DIR:?set by the kernelspec}"
for i in $(seq 0 7); do
    slot="$EPIC_EVCXR_DIR/slot-$i"
    mkdir -p "$slot"
    exec 9>"$slot.lock"
    if flock -n 9; then
        # fd 9 stays open in evcxr_jupyter: the slot is ours until it exits.
        export EVCXR_TMPDIR="$slot"
        exec "$EPIC_EVCXR_BIN" "$@"
    fi
    exec 9>&-
done
echo "evcxr-kernel: all 8 slots of $EPIC_EVCXR_DIR busy; compiling in a temporary folder" >&2
exec "$EPIC_EVCXR_BIN" "$@"
