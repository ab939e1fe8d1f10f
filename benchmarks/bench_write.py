#!/usr/bin/env python3
"""Writing a multiscale pyramid to local N5: ours (tensorstore) against the original.

The same uint8 data (a 3-level pyramid, s0 plus two 2x-downsampled levels) and the same
compressor are written to a fresh container by:

- ``original``: cellmap-schemas 0.8.1 in its own venv (zarr-python 2): ``Group.from_arrays(...)
  .to_zarr(N5FSStore(...), path)`` then ``group[name][:] = data`` for each level;
- ``ours-assign``: the same lines with our package, a path string as the store (the seed's way);
- ``ours-pyramid``: ``write_pyramid``, every level's write in flight at once.

Each figure is one whole write (model, metadata, all data), timed in one run; data generation
and loading are outside the timing. Afterwards every container's s1 is read back with tensorstore
and compared with the data.

    uv run python benchmarks/bench_write.py [--size-mib 512] [--chunk 128] [--compressor gzip]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LEVELS = ("s0", "s1", "s2")

ORIGINAL = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from numcodecs import GZip
from zarr.n5 import N5FSStore
from cellmap_schemas.multiscale.neuroglancer_n5 import Group

folder, store, chunk, compressor, level = sys.argv[1:6]
arrays = [np.load(f"{folder}/{name}.npy") for name in ("s0", "s1", "s2")]
codec = GZip(level=int(level)) if compressor == "gzip" else None
start, cpu = time.perf_counter(), time.process_time()
model = Group.from_arrays(
    arrays=arrays, paths=("s0", "s1", "s2"), axes=("z", "y", "x"),
    scales=((1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (4.0, 4.0, 4.0)), units=("nm", "nm", "nm"),
    chunks=(int(chunk),) * 3, compressor=codec, dimension_order="C",
)
group = model.to_zarr(N5FSStore(store), path="image")
for name, data in zip(("s0", "s1", "s2"), arrays):
    group[name][:] = data
print(json.dumps([time.perf_counter() - start, time.process_time() - cpu]))
"""


def make_pyramid(size_mib: int) -> dict[str, np.ndarray]:
    """Deterministic, moderately compressible uint8 data: smooth ramps plus 4 bits of noise."""
    z = max(size_mib * (1 << 20) // (512 * 512), 4)
    rng = np.random.default_rng(0)
    zz = np.arange(z, dtype=np.uint16)[:, None, None]
    yy = np.arange(512, dtype=np.uint16)[None, :, None]
    xx = np.arange(512, dtype=np.uint16)[None, None, :]
    s0 = ((zz // 4 + yy // 2 + xx // 8) % 240).astype(np.uint8)
    s0 += rng.integers(0, 16, size=s0.shape, dtype=np.uint8)
    return {
        "s0": s0,
        "s1": np.ascontiguousarray(s0[::2, ::2, ::2]),
        "s2": np.ascontiguousarray(s0[::4, ::4, ::4]),
    }


def model_of(arrays: dict[str, np.ndarray], chunk: int, compressor: dict[str, Any] | None) -> Any:
    from cellmap_schemas.multiscale.neuroglancer_n5 import Group

    return Group.from_arrays(
        arrays=list(arrays.values()),
        paths=LEVELS,
        axes=("z", "y", "x"),
        scales=((1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (4.0, 4.0, 4.0)),
        units=("nm", "nm", "nm"),
        chunks=(chunk,) * 3,
        compressor=compressor,
        dimension_order="C",
    )


Timing = tuple[float, float]  # wall seconds, CPU seconds (all threads of the process)


def ours_assign(
    arrays: dict[str, np.ndarray], store: Path, chunk: int, comp: dict[str, Any] | None
) -> Timing:
    start, cpu = time.perf_counter(), time.process_time()
    group = model_of(arrays, chunk, comp).to_zarr(store=str(store), path="image")
    for name, data in arrays.items():
        group[name][:] = data
    return time.perf_counter() - start, time.process_time() - cpu


def ours_pyramid(
    arrays: dict[str, np.ndarray], store: Path, chunk: int, comp: dict[str, Any] | None
) -> Timing:
    from cellmap_schemas.io.write import write_pyramid

    start, cpu = time.perf_counter(), time.process_time()
    write_pyramid(model_of(arrays, chunk, comp), str(store), "image", arrays)
    return time.perf_counter() - start, time.process_time() - cpu


def original(python: str, folder: Path, store: Path, args: argparse.Namespace) -> Timing:
    done = subprocess.run(
        [python, "-c", ORIGINAL, str(folder), str(store), str(args.chunk), args.compressor,
         str(args.level)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return float(wall), float(cpu)


def check(store: Path, expected: np.ndarray) -> bool:
    """Read s1 back with tensorstore (C order) and compare with the data written."""
    import tensorstore as ts

    spec = {"driver": "n5", "kvstore": {"driver": "file", "path": f"{store}/image/s1/"}}
    back = ts.open({**spec, "open": True}).result().T.read().result()
    return bool(np.array_equal(back, expected))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512, help="size of s0 (MiB)")
    parser.add_argument("--chunk", type=int, default=128, help="cubic chunk edge")
    parser.add_argument("--compressor", choices=("gzip", "raw"), default="gzip")
    parser.add_argument("--level", type=int, default=1, help="gzip level")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    python = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup-original-env.sh")],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    comp = {"id": "gzip", "level": args.level} if args.compressor == "gzip" else None
    # imports happen before the clock starts, as they do in the original's script
    import tensorstore  # noqa: F401

    import cellmap_schemas.io.write
    import cellmap_schemas.multiscale.neuroglancer_n5  # noqa: F401

    work = Path(tempfile.mkdtemp(prefix="bench-write-"))
    try:
        arrays = make_pyramid(args.size_mib)
        total = sum(a.nbytes for a in arrays.values()) / (1 << 20)
        for name, data in arrays.items():
            np.save(work / f"{name}.npy", data)

        results: dict[str, Timing] = {}
        results["original"] = original(python, work, work / "original.n5", args)
        results["ours-assign"] = ours_assign(arrays, work / "assign.n5", args.chunk, comp)
        results["ours-pyramid"] = ours_pyramid(arrays, work / "pyramid.n5", args.chunk, comp)
        same = {
            name: check(work / f"{name.removeprefix('ours-')}.n5", arrays["s1"]) for name in results
        }
        on_disk = {
            name: sum(p.stat().st_size for p in (work / f"{name.removeprefix('ours-')}.n5")
                      .rglob("*") if p.is_file()) / (1 << 20)
            for name in results
        }  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)

    shapes = " + ".join("x".join(map(str, a.shape)) for a in arrays.values())
    if args.json:
        print(json.dumps({"mib": total, "shapes": shapes, "wall_cpu": results, "ok": same}))
        return
    print(
        f"pyramid {shapes} uint8 = {total:.0f} MiB, chunks {args.chunk}^3, "
        f"{args.compressor}{'-' + str(args.level) if comp else ''}, local N5"
    )
    print(
        f"{'writer':<14}{'wall s':>8}{'MiB/s':>7}{'speedup':>9}{'CPU s':>8}{'CPU ratio':>11}"
        f"{'on disk MiB':>13}  data ok"
    )
    base_wall, base_cpu = results["original"]
    for name, (wall, cpu) in results.items():
        print(
            f"{name:<14}{wall:>8.2f}{total / wall:>7.0f}{base_wall / wall:>8.2f}x{cpu:>8.2f}"
            f"{base_cpu / cpu:>10.2f}x{on_disk[name]:>13.0f}  {same[name]}"
        )
    print("speedup = original wall / wall; CPU ratio = original CPU / CPU (1 = same work)")
    if not all(same.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
