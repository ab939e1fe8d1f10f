"""Scans over worker processes (``scan --jobs``): the report is the one a single process gives,
whatever the tree, the options and the faults; signals and dead workers lose nothing."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from cellmap_schemas._scan import ScanReport, collect, open_scan
from cellmap_schemas._scan.processes import WorkerPool, open_process_scan
from conftest import same_report

from .conftest import EXAMPLE, gh, run_scan

pytestmark = pytest.mark.timeout(180)


def _sharded(url: str, jobs: int | WorkerPool, **kw: Any) -> tuple[ScanReport, int]:
    """A process scan to the end, and how many tasks it ran."""

    async def run() -> tuple[ScanReport, int]:
        async with open_process_scan(url, jobs, **kw) as scan:
            nodes = [node async for node in scan]
            summary, _ = scan.finish()
            tasks = scan.tasks
        nodes.sort(key=lambda n: n.path)
        return ScanReport(summary=summary, nodes=nodes), tasks

    return anyio.run(run, backend="asyncio")


@pytest.fixture(scope="module")
def irregular(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Many models' roots, broken documents of many kinds, extra members, labels, crops."""
    out = tmp_path_factory.mktemp("irregular")
    gh.generate(out, datasets=6, groups=120, levels="2-4", broken_fraction=0.15, seed=5,
                layout="irregular")  # fmt: skip
    return out


def test_an_irregular_tree_gets_the_report_of_one_process(irregular: Path) -> None:
    single = run_scan(str(irregular))
    assert single.summary.invalid and single.summary.unreadable  # a tree worth comparing
    same_report(single, run_scan(str(irregular), jobs=2))
    report, tasks = _sharded(str(irregular), 2, split_after=1, concurrency=4)
    assert tasks > 6  # every task handed its subtrees back: the tree was cut finely
    same_report(single, report)


def test_a_pool_is_reused_and_the_limits_reach_the_workers(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    shutil.copytree(EXAMPLE, root)
    big = root / "jrc_hela-2/jrc_hela-2.n5/em/fibsem-uint8/s0/attributes.json"
    big.write_text(json.dumps({**json.loads(big.read_text()), "pad": "x" * 40_000}))
    outside = tmp_path / "outside"
    shutil.copytree(EXAMPLE / "jrc_cos7-1a", outside)
    (root / "linked").symlink_to(outside, target_is_directory=True)
    with WorkerPool(2) as pool:
        for kw in ({}, {"max_document_size": 32_768}, {"follow_symlinks": True}):
            single = anyio.run(lambda kw=kw: _collect_all(str(root), 1, **kw))
            same_report(single, anyio.run(lambda kw=kw: _collect_all(str(root), pool, **kw)))
            nodes = {n.path: n for n in single.nodes}
            if "max_document_size" in kw:
                assert nodes["jrc_hela-2/jrc_hela-2.n5/em/fibsem-uint8/s0"].status == "unreadable"
            assert any(p.startswith("linked/") for p in nodes) == ("follow_symlinks" in kw)


def test_a_pool_reused_on_a_changed_tree_reads_it_afresh(tmp_path: Path) -> None:
    """A worker's tasks of one scan share its store; the next scan opens its own, so a
    tree changed in between is read as it is now."""
    root = tmp_path / "bucket"
    shutil.copytree(EXAMPLE, root)
    level = "jrc_hela-2/jrc_hela-2.n5/em/fibsem-uint8/s0"
    with WorkerPool(1) as pool:
        before, tasks = _sharded(str(root), pool, split_after=1)  # many tasks, one worker
        assert tasks > 1
        (root / level / "attributes.json").write_text("{")
        shutil.rmtree(root / "jrc_cos7-1a")
        after, _ = _sharded(str(root), pool, split_after=1)
    old = {n.path: n.status for n in before.nodes}
    new = {n.path: n.status for n in after.nodes}
    assert old[level] == "valid" and new[level] == "unreadable"
    assert any(p.startswith("jrc_cos7-1a") for p in old)
    assert not any(p.startswith("jrc_cos7-1a") for p in new)
    same_report(run_scan(str(root)), after)


def test_a_pool_runs_one_scan_at_a_time() -> None:
    async def two() -> None:
        with WorkerPool(1) as pool:
            async with open_scan(str(EXAMPLE), jobs=pool) as first:
                with pytest.raises(RuntimeError, match="one scan at a time"):
                    async with open_scan(str(EXAMPLE), jobs=pool):
                        pass
                assert [node async for node in first]
            report = await _collect_all(str(EXAMPLE), pool)  # free again
            assert report.summary.nodes == 126

    anyio.run(two)


async def _collect_all(url: str, jobs: int | WorkerPool, **kw: Any) -> ScanReport:
    async with open_scan(url, jobs=jobs, **kw) as scan:
        nodes = [node async for node in scan]
        summary, _ = scan.finish()
    nodes.sort(key=lambda n: n.path)
    return ScanReport(summary=summary, nodes=nodes)


def test_a_root_inside_labels_judges_its_crops_against_the_images_above(tmp_path: Path) -> None:
    root = tmp_path / "jrc_hela-2"
    shutil.copytree(EXAMPLE / "jrc_hela-2", root)
    crop = root / "jrc_hela-2.zarr/recon-1/labels/groundtruth/crop1/mito/.zattrs"
    attrs = json.loads(crop.read_text())
    for ds in attrs["multiscales"][0]["datasets"]:
        for t in ds["coordinateTransformations"]:
            if t["type"] == "translation":
                t["translation"][1] += 1.0  # off the image's grid: CROP101
    crop.write_text(json.dumps(attrs))
    labels = str(root / "jrc_hela-2.zarr/recon-1/labels")
    single = run_scan(labels)
    (crop1,) = [n for n in single.nodes if n.path == "groundtruth/crop1"]
    assert crop1.status == "invalid" and "CROP101" in msgspec.json.encode(crop1).decode()
    report, _ = _sharded(labels, 2, split_after=1)
    same_report(single, report)


def test_a_dead_workers_tasks_are_crawled_again_here_and_the_pool_recovers() -> None:
    """A worker killed before the scan breaks the pool: every task fails, and this process
    crawls their seeds itself; the report is the one process's, and the next scan gets new
    workers."""
    single = run_scan(str(EXAMPLE))
    with WorkerPool(2) as pool:
        pool.start()
        workers = multiprocessing.active_children()
        assert len(workers) == 2
        os.kill(workers[0].pid or 0, signal.SIGKILL)
        workers[0].join(10)
        report = anyio.run(lambda: _collect_all(str(EXAMPLE), pool))
        assert not [n for n in report.nodes if "shard failed" in (n.error or "")]
        same_report(single, report)
        same_report(single, anyio.run(lambda: _collect_all(str(EXAMPLE), pool)))  # new workers


def test_a_worker_killed_mid_task_loses_nothing_and_repeats_nothing(slow_url: str) -> None:
    """Killed after it sent some records: its task's seeds are crawled again here, the
    records it sent left out; every node is reported once, with the verdict one process
    gives (the request count aside: the dead worker's reads are read again)."""
    single = run_scan(slow_url)

    async def run() -> tuple[ScanReport, int]:
        with WorkerPool(2) as pool:
            async with open_process_scan(slow_url, pool, concurrency=2) as scan:
                nodes, killed = [], 0
                async for node in scan:
                    nodes.append(node)
                    if not killed and scan.extra_found:  # a record a worker sent
                        workers = multiprocessing.active_children()
                        os.kill(workers[0].pid or 0, signal.SIGKILL)
                        killed = workers[0].pid or 0
                summary, _ = scan.finish()
                failed = scan.failed_tasks
        nodes.sort(key=lambda n: n.path)
        assert killed
        return ScanReport(summary=summary, nodes=nodes), failed

    report, failed = anyio.run(run)
    assert failed >= 1
    assert [n.path for n in report.nodes] == [n.path for n in single.nodes]  # each once
    assert report.nodes == single.nodes
    assert report.summary.nodes == single.summary.nodes


_POOL_START = """
import sys, threading
from cellmap_schemas._scan.processes import WorkerPool
if sys.argv[1] == "thread":
    threading.Thread(target=threading.Event().wait, daemon=True).start()
with WorkerPool(2) as pool:
    print(pool.start().start_method)
"""


@pytest.mark.parametrize(("state", "method"), [("alone", "fork"), ("thread", "forkserver")])
def test_workers_are_forked_only_from_a_process_of_one_thread(state: str, method: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _POOL_START, state], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == method


def _cli(*argv: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cellmap_schemas.cli", "scan", *argv],
        capture_output=True, text=True, timeout=120, **kw,
    )  # fmt: skip


def test_cli_jobs_give_the_same_report(irregular: Path, tmp_path: Path) -> None:
    reports = {}
    for jobs in ("1", "2", "3"):
        done = _cli(str(irregular), "--jobs", jobs, "-o", str(tmp_path / f"{jobs}.json"))
        assert done.returncode == 1, done.stderr  # the tree has broken nodes
        doc = json.loads((tmp_path / f"{jobs}.json").read_text())
        for key in ("elapsed_s", "started_at"):
            doc["summary"].pop(key)
        reports[jobs] = doc
    assert reports["1"] == reports["2"] == reports["3"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--jobs", "0"], "--jobs"),
        (["--jobs", "2", "--dask", "local:2"], "--jobs does not combine with --dask"),
    ],
)
def test_cli_bad_jobs(argv: list[str], message: str) -> None:
    done = _cli(str(EXAMPLE), *argv)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_ctrl_c_on_the_process_group_stops_the_workers_and_reports(slow_url: str) -> None:
    """Ctrl-C reaches every process of the terminal's group: the workers leave it to the
    parent, which reports what they had sent and ends them."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cellmap_schemas.cli", "scan", slow_url, "--jobs", "2",
         "--concurrency", "2", "--format", "ndjson"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    workers = _children(proc.pid)
    assert len(workers) == 2
    first = proc.stdout.readline()  # records sent ahead by a worker, mid-crawl
    assert first, proc.stderr.read()
    os.killpg(proc.pid, signal.SIGINT)
    out = first + proc.stdout.read()
    err = proc.stderr.read()
    proc.wait(60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted by SIGINT" in err
    lines = [json.loads(line) for line in out.splitlines()]
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["interrupted"] is True
    assert 0 < summary["nodes"] == len(lines) - 1
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (once there are two), from /proc."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
        if len(found) >= 2:
            return found
        time.sleep(0.05)
    return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_collect_takes_jobs(irregular: Path) -> None:
    single = run_scan(str(irregular), models=["multiscale.cosem.Group"])
    both = anyio.run(lambda: collect(str(irregular), models=["multiscale.cosem.Group"], jobs=2))
    same_report(single, both)
