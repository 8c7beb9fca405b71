#!/usr/bin/env bash
# Build the one-folder desktop bundle with PyInstaller, then smoke-test the built binary offscreen:
# it opens the main window on the shipped model, composes one image and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
"$BIN/pyinstaller" --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/attribute-studio.spec
echo "bundle: dist/attribute-studio ($(du -sh dist/attribute-studio | cut -f1))"
QT_QPA_PLATFORM=offscreen dist/attribute-studio/attribute-studio --smoke-test
echo "smoke test passed"
