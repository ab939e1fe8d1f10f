#!/usr/bin/env python3
"""Where a local scan's time goes: the CPU time of the event loop's thread, by phase.

Runs ``cellmap-schemas scan TREE`` in this process with the phases wrapped (a measurement
harness, not a test: the scan itself is unchanged) and prints each phase's thread CPU time, the
rest of the thread's CPU (the walker, the event loop, model loading), and the wall time: what
the thread spent waiting (for the reading thread) is the difference. Sampling profilers blur
these (the GIL's hand-overs, C code without frames); thread CPU time does not.

    uv run python benchmarks/bench_phases.py TREE [--format json] [--jobs 1]

The scan runs in this process (``--jobs 1``) unless told otherwise: worker processes' phases are
not seen from here.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


_NESTED: list[float] = [0.0]
"""Time spent in wrapped phases inside the running one (subtracted from it: each phase's
figure is its own, a phase called inside another is not counted twice)."""


def _wrap(owner: Any, name: str, label: str, spent: dict[str, float]) -> None:
    inner: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(inner)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        outer = _NESTED[0]
        _NESTED[0] = 0.0
        try:
            return inner(*args, **kwargs)
        finally:
            took = time.thread_time() - start
            spent[label] += took - _NESTED[0]
            _NESTED[0] = outer + took

    setattr(owner, name, timed)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("tree", help="a local hierarchy")
    p.add_argument("--format", default="json", help="report format (json, ndjson, ...)")
    p.add_argument(
        "--jobs",
        default="1",
        help="worker processes (default 1: the phases are timed in this process only)",
    )
    args = p.parse_args(argv)

    import cellmap_schemas._scan as scan_mod
    import cellmap_schemas._scan.report as report
    import cellmap_schemas.io.walk as walk
    from cellmap_schemas.cli import main as cli_main
    from cellmap_schemas.validation import Verdicts

    spent: dict[str, float] = collections.defaultdict(float)
    _wrap(Verdicts, "judge", "verdicts (Verdicts.judge)", spent)
    _wrap(Verdicts, "applicable", "markers (Verdicts.applicable)", spent)
    _wrap(walk, "parse_node_lenient", "parse_node", spent)
    import cellmap_schemas.io._local as local

    # on the loop's thread while the page cache answers (on worker threads these count nothing)
    _wrap(local, "read_batch", "local reads (read_batch)", spent)
    _wrap(local, "scan_batch", "local listings (scan_batch)", spent)
    _wrap(scan_mod.ScanStream, "_take", "report: handing nodes out", spent)
    writer = report.NdjsonWriter if args.format == "ndjson" else report.JsonWriter
    _wrap(writer, "node", "report: encoding", spent)
    _wrap(report.Tally, "add", "report: tallies", spent)

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / f"report.{args.format}")
        sys.argv = ["cellmap-schemas", "scan", args.tree, "--format", args.format, "-o", out]
        sys.argv += ["--jobs", args.jobs]
        wall, cpu = time.perf_counter(), time.thread_time()
        with contextlib.suppress(SystemExit):  # the command line exits with the verdict
            cli_main()
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    print(f"{'phase':34s} {'ms':>8s} {'share':>6s}")
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"{label:34s} {seconds * 1e3:8.1f} {seconds / cpu:6.0%}")
    rest = cpu - sum(spent.values())
    print(f"{'walker, event loop, start-up':34s} {rest * 1e3:8.1f} {rest / cpu:6.0%}")
    print(f"event loop thread: {cpu:.3f} s of CPU in {wall:.3f} s of wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
