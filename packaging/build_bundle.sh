#!/usr/bin/env bash
# Build the one-folder desktop bundle dist/attribute-studio/ with PyInstaller, then smoke-test the built binary
# offscreen: it opens the main window on the shipped model, composes one image and exits 0.
#
#   bash packaging/build_bundle.sh                    # smoke test on the shipped model (models/ must hold one)
#   bash packaging/build_bundle.sh --model RUN_DIR    # smoke test on another checkpoint
#
# Arguments go to the smoke test. BIN names the virtual environment's bin folder (default .venv/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
start=$(date +%s)
"$BIN/pyinstaller" --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
    packaging/attribute-studio.spec
built=$(date +%s)
echo "bundle: dist/attribute-studio ($(du -sh dist/attribute-studio | cut -f1), $(find dist/attribute-studio -type f | wc -l) files), built in $((built - start)) s"
QT_QPA_PLATFORM=offscreen dist/attribute-studio/attribute-studio --smoke-test "$@"
echo "smoke test of the bundle passed in $(( $(date +%s) - built )) s"
