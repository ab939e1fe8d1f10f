#!/usr/bin/env python3
"""Peak memory of a command and every process it starts (a scan's worker processes included).

The peak RSS that ``wait4`` reports is the largest single process's; forked workers share the
parent's pages until they write them, so RSS summed over processes counts those pages twice.
This samples ``/proc/PID/smaps_rollup`` of the whole process tree every ``--every`` seconds and
prints the peak of the summed proportional set size (PSS: shared pages split between their
sharers), the peak of the summed RSS, and each process's peak PSS.

    uv run python benchmarks/memory_tree.py -- .venv/bin/cellmap-schemas scan TREE -o /tmp/r.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["descendants", "sample"]


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from ``/proc/*/stat`` (the parent is field 4)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def _kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample(command: Sequence[str], every: float = 0.02) -> dict[str, object]:
    """Run ``command`` (output dropped) and sample its process tree until it exits."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_pss = peak_rss = 0
    per: dict[int, int] = {}
    while proc.poll() is None:
        pids = descendants(proc.pid)
        pss = {p: _kib(p, "Pss") for p in pids}
        for p, v in pss.items():
            per[p] = max(per.get(p, 0), v)
        peak_pss = max(peak_pss, sum(pss.values()))
        peak_rss = max(peak_rss, sum(_kib(p, "Rss") for p in pids))
        time.sleep(every)
    return {
        "returncode": proc.returncode,
        "processes": len(per),
        "peak_pss_sum_mib": round(peak_pss / 1024, 1),
        "peak_rss_sum_mib": round(peak_rss / 1024, 1),
        "per_process_peak_pss_mib": [round(v / 1024, 1) for v in per.values()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--every", type=float, default=0.02, help="seconds between samples")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given")
    print(json.dumps(sample(command, args.every)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
