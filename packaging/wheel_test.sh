#!/usr/bin/env bash
# The wheel as a user gets it: build it (not editable), install it into a fresh virtual environment, and from
# outside the checkout open the app offscreen on the shipped model (found inside the installed package) and
# compose one image (`attribute-studio --smoke-test`); the CLI answers too, and the metadata carries the version,
# the SPDX license and the LICENSE file.
#
#   bash packaging/wheel_test.sh
#
# The dependencies (torch, PySide6, ...) are not downloaded again: one .pth line, written after the install, lets
# the fresh environment see the project venv's site-packages behind its own (only site directories have their
# .pth files run, so the project's editable install stays invisible there). BIN names that venv's bin folder.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/attribute-studio-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

# built from a copy of what goes into the wheel, so the checkout gets no build/ folder
mkdir "$work/src"
cp -r pyproject.toml README.md LICENSE studio models resources "$work/src/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
"$BIN/python" -m pip wheel "$work/src" --no-deps --no-build-isolation --quiet --wheel-dir "$work/dist" \
    2>"$work/build.log" || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/attribute_studio-*.whl)
"$BIN/python" -m venv --without-pip "$work/venv"
"$BIN/python" -m pip --python "$work/venv/bin/python" install --quiet --no-deps --no-index "$wheel"
fresh_site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$BIN/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$fresh_site/project-venv-dependencies.pth"
echo "wheel: $(basename "$wheel") ($(du -h "$wheel" | cut -f1)), installed in $(( $(date +%s) - start )) s"

cd "$work"  # nothing may come from the checkout from here on
export QT_QPA_PLATFORM=offscreen
"$work/venv/bin/python" - "$fresh_site" <<'EOF'
import importlib.metadata as md
import sys
from pathlib import Path

import studio
from studio.paths import default_model, icon_path, shipped_models

site = Path(sys.argv[1]).resolve()
assert Path(studio.__file__).resolve().is_relative_to(site), f"studio imported from {studio.__file__}, not {site}"
meta = md.metadata("attribute-studio")
assert meta["Version"] == studio.__version__, (meta["Version"], studio.__version__)
assert meta["License-Expression"] == "MIT", meta["License-Expression"]
assert "LICENSE" in (meta.get_all("License-File") or []), meta.get_all("License-File")
models = shipped_models()
assert models and all(p.resolve().is_relative_to(site) for p in models), models
assert default_model("fonts") in models and icon_path(256).is_file() and icon_path().is_file()
print(f"installed package: version {studio.__version__}, license MIT, {len(models)} shipped models, icons")
EOF
"$work/venv/bin/studio" --version
"$work/venv/bin/attribute-studio" --smoke-test --smoke-timeout "${SMOKE_TIMEOUT:-600}" | tee "$work/smoke.txt"
grep -q "^smoke test passed: model=$fresh_site/studio/shipped_models/fonts-gzs/" "$work/smoke.txt" \
    || { echo "the smoke test did not open the installed package's shipped model"; exit 1; }
echo "wheel test passed in $(( $(date +%s) - start )) s"
