#!/usr/bin/env python3
"""Interleaved A/B runs of whole commands: min and median of wall and CPU time for each.

A shared machine's speed drifts by tens of percent within minutes, so two versions timed one
after the other compare the moments, not the versions. This alternates the commands run by run
and reports each one's best and median; CPU is the child's user + system time (``wait4``).

    uv run python benchmarks/ab.py 7 \\
        "before=PYTHONPATH=/tmp/old/src .venv/bin/cellmap-schemas scan TREE -o /tmp/a.json" \\
        "after=.venv/bin/cellmap-schemas scan TREE -o /tmp/b.json"
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import time
from collections.abc import Sequence

__all__ = ["interleave"]


Runs = dict[str, list[tuple[float, float]]]


def interleave(commands: Sequence[tuple[str, str]], rounds: int) -> Runs:
    """``(wall, cpu)`` seconds of each labelled shell command, ``rounds`` runs each, alternated."""
    out: Runs = {label: [] for label, _ in commands}
    for _ in range(rounds):
        for label, cmd in commands:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            out[label].append((wall, cpu))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("rounds", type=int, help="runs of each command")
    p.add_argument("commands", nargs="+", help="LABEL=COMMAND (a shell command)")
    args = p.parse_args(argv)
    if not all("=" in c for c in args.commands):
        p.error("each command is LABEL=COMMAND")
    commands = [(c.split("=", 1)[0], c.split("=", 1)[1]) for c in args.commands]
    results = interleave(commands, args.rounds)
    for label, runs in results.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        print(
            f"{label:12s} wall min {min(walls):.2f} med {statistics.median(walls):.2f} s   "
            f"cpu min {min(cpus):.2f} med {statistics.median(cpus):.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
