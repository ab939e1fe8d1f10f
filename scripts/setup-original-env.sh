#!/usr/bin/env bash
# Install the original implementation (cellmap-schemas 0.8.1, pydantic + zarr-python 2) into its
# own virtual environment, for side-by-side benchmarks and verdict comparisons.
# Usage: scripts/setup-original-env.sh [DIR]   (default: .original-env); prints the python path.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$here/.original-env}"
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c "import cellmap_schemas.multiscale.cosem, zarr.n5" 2>/dev/null; then
    command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
    uv venv --quiet --python "$(command -v python3)" "$dir"
    # The wheel's declared dependencies are incomplete; this set is what the original needs.
    uv pip install --quiet --python "$dir/bin/python" \
        "cellmap-schemas==0.8.1" "zarr<3" "pydantic-zarr<0.8" numcodecs xarray click "s3fs" "numpy<2.3"
fi
echo "$dir/bin/python"
