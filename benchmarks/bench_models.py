"""Decode + validate speed of the COSEM models: ours, the original, and untyped msgspec.

Each document is validated from its JSON bytes (``Model.model_validate_json``, typed decoding
straight into the structs). The same bytes are decoded untyped with ``msgspec.json.decode`` (the
floor: parsing alone) and validated by the original implementation (pydantic 2 +
pydantic-zarr), whose timing runs in its own virtual environment as a subprocess of this run, so
all figures come from one run on one machine.

A scan does not take the typed path: it decodes a node's documents untyped, builds the node's
spec dict (an N5 array's ``attributes.json`` becomes a Zarr v2 array spec) and converts that to
each model that judges the node. The "scan" column times that path for one model, through the
scan's own functions (``formats.parse_node`` and ``validation.judge_node``, pyramid rules
included for the group spec).

Usage::

    uv run python benchmarks/bench_models.py [--json] [--no-original] [--original-python PATH]

The original's environment is made with ``scripts/setup-original-env.sh`` when not given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "tests" / "data" / "models"  # shared with the model tests

# (label, model path below cellmap_schemas, data file; ":compact" = re-encoded without spaces)
_G, _A, _S = (
    "multiscale.cosem.GroupMetadata",
    "multiscale.cosem.ArrayMetadata",
    "multiscale.cosem.Group",
)
CASES: list[tuple[str, str, str]] = [
    ("GroupMetadata, 6 levels, indented", _G, "cosem_group_attributes"),
    ("GroupMetadata, 6 levels, compact", _G, "cosem_group_attributes:compact"),
    ("ArrayMetadata, indented", _A, "cosem_array_attributes"),
    ("ArrayMetadata, compact", _A, "cosem_array_attributes:compact"),
    ("Group spec (attrs+6 arrays), indented", _S, "cosem_group_spec"),
    ("Group spec (attrs+6 arrays), compact", _S, "cosem_group_spec:compact"),
]

# Timing code shared by both interpreters (ours, and the original's via ``python -c``). Each
# figure is the minimum over repeats of ~0.1 s of CPU time of this process (process_time, not
# wall time): on a machine shared with other jobs, time spent descheduled is not counted.
TIMER = r'''
import importlib, json, sys, time, timeit

def read(data_dir, name):
    # The files are indented as zarr-python writes them; n5-java writes compact JSON.
    name, _, variant = name.partition(":")
    raw = open(f"{data_dir}/{name}.json", "rb").read()
    if variant == "compact":
        raw = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    return raw

def load(cases, data_dir):
    out = []
    for label, model, name in cases:
        module, _, cls = model.rpartition(".")
        tp = getattr(importlib.import_module("cellmap_schemas." + module), cls)
        raw = read(data_dir, name)
        tp.model_validate_json(raw)  # must be valid; also warms caches
        out.append((label, tp, raw))
    return out

def time_calls(fns, repeat):
    """Per-call seconds of each function, timed in alternation so load spikes hit all alike."""
    timers = {k: timeit.Timer(fn, timer=time.process_time) for k, fn in fns.items()}
    numbers = {k: max(1, t.autorange()[0] // 2) for k, t in timers.items()}
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for k, t in timers.items():
            best[k] = min(best[k], t.timeit(numbers[k]) / numbers[k])
    return best

def time_models(cases, data_dir, repeat=5):
    return time_calls(
        {label: (lambda tp=tp, raw=raw: tp.model_validate_json(raw))
         for label, tp, raw in load(cases, data_dir)},
        repeat,
    )
'''

namespace: dict[str, Any] = {}
exec(TIMER, namespace)
load = namespace["load"]
read = namespace["read"]
time_calls: Callable[[dict[str, Callable[[], Any]], int], dict[str, float]] = namespace[
    "time_calls"
]


def original_python(explicit: str | None) -> str:
    """The original implementation's interpreter, installing it when needed."""
    if explicit:
        return explicit
    script = ROOT / "scripts" / "setup-original-env.sh"
    out = subprocess.run([str(script)], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def time_original(python: str) -> dict[str, float]:
    """Per-call seconds of the original's models, measured in its own interpreter."""
    code = TIMER + (
        "\nimport json, sys\nprint(json.dumps(time_models(json.loads(sys.argv[1]), sys.argv[2])))\n"
    )
    # Run outside the project directory so the original's package, not ours, is imported.
    out = subprocess.run(
        [python, "-c", code, json.dumps(CASES), str(DATA)],
        check=True,
        capture_output=True,
        text=True,
        cwd="/",
    )
    return json.loads(out.stdout)


def time_ours_and_untyped(
    repeat: int,
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Our models, untyped ``msgspec.json.decode`` and the scan path on the same bytes."""
    decode = msgspec.json.decode
    fns: dict[str, Callable[[], Any]] = {}
    for label, tp, raw in load(CASES, str(DATA)):
        fns[f"ours:{label}"] = lambda tp=tp, raw=raw: tp.model_validate_json(raw)
        fns[f"untyped:{label}"] = lambda raw=raw: decode(raw)
        fns[f"scan:{label}"] = _scan_path(tp, raw)
    best = time_calls(fns, repeat)
    ours = {label: best[f"ours:{label}"] for label, _, _ in CASES}
    untyped = {label: best[f"untyped:{label}"] for label, _, _ in CASES}
    scan = {label: best[f"scan:{label}"] for label, _, _ in CASES}
    return ours, untyped, scan


def _scan_path(tp: Any, raw: bytes) -> Callable[[], Any]:
    """The scan's way to a verdict on one document: untyped decode, spec dict, conversion."""
    from cellmap_schemas import base
    from cellmap_schemas.formats import decode_document, parse_node
    from cellmap_schemas.multiscale import cosem
    from cellmap_schemas.validation import judge_node

    if tp is cosem.Array or tp is cosem.ArrayMetadata:  # an N5 array's attributes.json

        def array() -> Any:
            node = parse_node({"attributes.json": raw}, "bench")
            return judge_node(cosem.Array, node.spec, "n5", "array")

        return array
    if tp is cosem.GroupMetadata:  # a group's attributes, as a scan converts them
        return lambda: base.judge(decode_document(raw, "bench", "attributes.json"), tp)
    return lambda: judge_node(tp, decode_document(raw, "bench", "spec"), "n5", "group")


def _keep_min(best: dict[str, float], new: dict[str, float]) -> None:
    for k, v in new.items():
        best[k] = min(v, best.get(k, v))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--no-original", action="store_true", help="skip the original")
    parser.add_argument("--original-python", help="interpreter with cellmap-schemas 0.8.1")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of (ours, untyped, original); min is kept"
    )
    args = parser.parse_args(argv)

    python = None if args.no_original else original_python(args.original_python)
    ours: dict[str, float] = {}
    untyped: dict[str, float] = {}
    original: dict[str, float] = {}
    scan: dict[str, float] = {}
    for _ in range(max(1, args.rounds)):
        o, u, sc = time_ours_and_untyped(repeat=5)
        _keep_min(ours, o)
        _keep_min(untyped, u)
        _keep_min(scan, sc)
        if python is not None:
            _keep_min(original, time_original(python))

    rows = []
    for label, model, name in CASES:
        row: dict[str, Any] = {
            "document": label,
            "model": model,
            "bytes": len(read(str(DATA), name)),
            "ours_us": ours[label] * 1e6,
            "untyped_msgspec_us": untyped[label] * 1e6,
            "ours_over_untyped": ours[label] / untyped[label],
            "scan_us": scan[label] * 1e6,
            "scan_over_untyped": scan[label] / untyped[label],
        }
        if label in original:
            row["original_us"] = original[label] * 1e6
            row["original_over_ours"] = original[label] / ours[label]
        rows.append(row)

    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "results": rows}, indent=2))
        return 0
    head = (
        f"{'document':<40} {'bytes':>6} {'ours us':>9} {'untyped us':>11} {'original us':>12} "
        f"{'ours/untyped':>13} {'speedup vs original':>20} {'scan us':>8} {'scan/untyped':>13}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        orig = f"{r['original_us']:12.2f}" if "original_us" in r else f"{'-':>12}"
        ratio = f"{r['original_over_ours']:19.1f}x" if "original_us" in r else f"{'-':>20}"
        print(
            f"{r['document']:<40} {r['bytes']:>6} {r['ours_us']:9.2f} "
            f"{r['untyped_msgspec_us']:11.2f} {orig} {r['ours_over_untyped']:12.2f}x {ratio} "
            f"{r['scan_us']:8.2f} {r['scan_over_untyped']:12.2f}x"
        )
    print(
        f"\nbest of {args.rounds} rounds; targets: speedup vs original >= 3x, ours/untyped <= 1.5x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
