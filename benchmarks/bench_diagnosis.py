"""Cost of judging an invalid document (the collect-every-problem walk), per model.

A scan of a tree (default: a generated irregular bucket) records every spec dict the models are
asked to judge; the documents a model refuses are then judged again, alone, and timed: the
figure is the time of ``base.judge`` per invalid node, the best of ``--rounds`` passes (process CPU
time, so a busy machine inflates it less than wall time would). It is split in two: the fast
check that fails (one ``msgspec.convert``, which for a group converts its members and may reach
the group's own rules before it refuses) and the walk that collects every problem after it
(``judge`` minus that check): the walk is what the diagnosis costs.

Usage::

    uv run python benchmarks/bench_diagnosis.py TREE [--json] [--rounds 5]
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec

from cellmap_schemas import base, synchronous
from cellmap_schemas._diagnose import dec_hook


def capture(tree: str) -> dict[Any, list[Any]]:
    """Every (model, spec dict) pair a scan of ``tree`` judges, the spec copied as judged."""
    seen: dict[Any, list[Any]] = collections.defaultdict(list)
    judge = base.judge

    def recording(obj: Any, tp: Any) -> Any:
        seen[tp].append(copy.deepcopy(obj))
        return judge(obj, tp)

    base.judge = recording  # a measurement harness, not a test: the scan itself is unchanged
    try:
        synchronous.scan(tree)
    finally:
        base.judge = judge
    return seen


def _per_node(rounds: int, run: Callable[[Any, Any], object], tp: Any, specs: list[Any]) -> float:
    """Seconds of process CPU per document of ``run(spec, tp)`` over ``specs``, the best of
    ``rounds`` passes."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for spec in specs:
            run(spec, tp)
        best = min(best, time.process_time() - start)
    return best / len(specs)


def _fails(spec: Any, tp: Any) -> None:
    """The fast check of ``base.judge`` alone, on a document it refuses."""
    try:
        msgspec.convert(spec, tp, dec_hook=dec_hook)  # as base.judge converts
    except msgspec.ValidationError:
        return
    raise AssertionError("a refused document passed the fast check")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", help="a hierarchy to scan (local path)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--rounds", type=int, default=5, help="passes, the best kept (5)")
    args = parser.parse_args(argv)
    rows = []
    for tp, specs in capture(args.tree).items():
        bad = [s for s in specs if base.judge(s, tp)[0] is None]
        if not bad:
            continue
        judge = _per_node(args.rounds, base.judge, tp, bad)
        check = _per_node(args.rounds, _fails, tp, bad)
        name = f"{tp.__module__.removeprefix('cellmap_schemas.')}.{tp.__qualname__}"
        rows.append(
            {
                "model": name,
                "invalid": len(bad),
                "us_per_node": judge * 1e6,
                "check_us": check * 1e6,
                "walk_us": (judge - check) * 1e6,
            }
        )
    rows.sort(key=lambda r: r["model"])
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<45} {'invalid':>8} {'judge us':>9} {'check us':>9} {'walk us':>8}")
    for r in rows:
        print(
            f"{r['model']:<45} {r['invalid']:>8} {r['us_per_node']:>9.1f}"
            f" {r['check_us']:>9.1f} {r['walk_us']:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
