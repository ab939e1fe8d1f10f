"""Scans sharded over a real Dask cluster on 127.0.0.1 (scheduler in this process, worker
processes beside it): the report equals the single-process scan's, on disk and on S3, when a
worker dies mid-task, and when a shard fails; Ctrl-C cancels the futures."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from cellmap_schemas._scan import ScanReport, collect
from conftest import S3Server, same_report

distributed = pytest.importorskip("distributed")

from cellmap_schemas._scan import distributed as dscan  # noqa: E402
from cellmap_schemas._scan import shards  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "cellmap-bucket"
COSEM = "multiscale.cosem.Group"
SECRET = "s3cr3t-9f2c-do-not-log"

pytestmark = pytest.mark.timeout(120)


def _load_generator() -> ModuleType:
    name = "generate_hierarchy"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "generate_hierarchy.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


gh = _load_generator()


# ---- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two worker processes (one thread each) and a blocking client; shared by the module."""
    import cloudpickle

    # the patches below run in the workers, which cannot import this test module
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 COSEM groups over 10 datasets on local disk (~6,000 nodes)."""
    out = tmp_path_factory.mktemp("dask-2000")
    gh.generate(out, datasets=10, groups=2000, levels=2, broken_fraction=0.1, seed=21)
    return out


@pytest.fixture(autouse=True)
def _quiet_server_log() -> Iterator[None]:
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


# ---- patches run in the workers (test faults) -----------------------------------------------
def _slow_shards(seconds: float) -> None:
    """Every shard of this worker process waits ``seconds`` before it crawls."""
    import anyio as _anyio

    from cellmap_schemas._scan import shards as mod

    original = mod.__dict__.setdefault("_original_crawl", mod._crawl_shard_async)
    mod._stop_waiting = False

    async def slow(*args: Any) -> bytes:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not mod._stop_waiting:
            await _anyio.sleep(0.05)
        return await original(*args)

    mod._crawl_shard_async = slow


def _failing_shards(prefix: str) -> None:
    """Shards holding a seed below ``prefix`` raise (every attempt)."""
    from cellmap_schemas._scan import shards as mod

    original = mod.__dict__.setdefault("_original_crawl", mod._crawl_shard_async)

    async def failing(target: Any, seeds: Any, *args: Any) -> bytes:
        if any(s.path.startswith(prefix) for s in seeds):
            raise RuntimeError(f"injected failure under {prefix}")
        return await original(target, seeds, *args)

    mod._crawl_shard_async = failing


def _restore() -> None:
    from cellmap_schemas._scan import shards as mod

    mod._stop_waiting = True
    if "_original_crawl" in mod.__dict__:
        mod._crawl_shard_async = mod.__dict__.pop("_original_crawl")


@pytest.fixture
def patched(client: Any) -> Iterator[Any]:
    yield client
    client.run(_restore)
    client.wait_for_workers(2, timeout=60)


# ---- helpers ----------------------------------------------------------------------------------
def _single(url: str, **kw: Any) -> ScanReport:
    return anyio.run(lambda: collect(url, **kw), backend="asyncio")


def _distributed(url: str, where: Any, **kw: Any) -> tuple[ScanReport, dict[str, int]]:
    async def run() -> tuple[ScanReport, dict[str, int]]:
        async with dscan.open_distributed_scan(url, where, **kw) as scan:
            nodes = [node async for node in scan]
            summary, _ = scan.finish()
            stats = {"tasks": scan.tasks, "failed": scan.failed_tasks, "found": scan.found}
        nodes.sort(key=lambda n: n.path)
        report = ScanReport(summary=summary, nodes=nodes)
        return report, stats

    return anyio.run(run, backend="asyncio")


# ---- units --------------------------------------------------------------------------------------
def test_batches_are_contiguous_and_complete() -> None:
    seeds = [shards.Seed(f"d{i:02d}", None) for i in range(10)]
    batches = shards.batches(seeds, 4)
    assert [len(b) for b in batches] == [3, 3, 2, 2]
    assert [s for b in batches for s in b] == seeds
    assert shards.batches(seeds[:2], 8) == [[seeds[0]], [seeds[1]]]


def test_target_repr_names_nothing() -> None:
    target = shards.Target("s3://user:pw@bucket", {"secret": SECRET})
    assert SECRET not in repr(target) and "pw" not in repr(target)


def test_task_repr_names_no_secret() -> None:
    """What distributed logs of a failed task: its repr, with the arguments when short."""
    Task = pytest.importorskip("dask._task_spec").Task
    target = shards.Target("s3://bucket", {"secret": SECRET})
    settings = shards.Settings((), dscan.Options(), False, 64, 3, 30.0, None, None)
    for args in ((target,), (target, b"", settings)):
        assert SECRET not in repr(Task("k", shards.crawl_shard, *args))


def test_without_distributed_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(
        dscan.DistributedNotInstalled, match=r"pip install 'cellmap-schemas\[dask\]'"
    ):
        dscan.scan_distributed(str(EXAMPLE), "local:1")


def test_bad_local_address() -> None:
    with pytest.raises(ValueError, match="local:N"):
        dscan.scan_distributed(str(EXAMPLE), "local:two")


# ---- equal reports ------------------------------------------------------------------------------
def test_example_bucket_on_a_local_cluster() -> None:
    """``local:2``: a LocalCluster of two worker processes, started and closed by the scan."""
    single = _single(str(EXAMPLE))
    report, stats = _distributed(str(EXAMPLE), "local:2")
    same_report(single, report)
    assert stats["tasks"] >= 2 and not stats["failed"]
    assert stats["found"] == single.summary.nodes


def test_example_bucket_with_a_client_and_models(client: Any) -> None:
    options = dscan.Options(strict=True)
    single = _single(str(EXAMPLE), models=[COSEM], options=options)
    report, _ = _distributed(str(EXAMPLE), client, models=[COSEM], options=options)
    same_report(single, report)
    # and the blocking entry point, by scheduler address
    by_address = dscan.scan_distributed(
        str(EXAMPLE), client.scheduler.address, models=[COSEM], options=options
    )
    same_report(single, by_address)


def test_an_asynchronous_client_of_the_loop_is_used_as_it_is(client: Any) -> None:
    single = _single(str(EXAMPLE))

    async def run() -> ScanReport:
        async with distributed.Client(client.scheduler.address, asynchronous=True) as c:
            report = await dscan.collect_distributed(str(EXAMPLE), c)
            assert c.status == "running"  # not closed by the scan
            return report

    same_report(single, anyio.run(run, backend="asyncio"))


def test_container_root(client: Any) -> None:
    """A container as the root: datasets are named after it, as in a single-process scan."""
    url = str(EXAMPLE / "jrc_hela-2" / "jrc_hela-2.n5")
    single = _single(url)
    report, _ = _distributed(url, client)
    same_report(single, report)
    assert [d.name for d in report.datasets] == ["jrc_hela-2.n5"]


def test_2000_groups_on_disk(client: Any, big_tree: Path) -> None:
    single = _single(str(big_tree))
    assert single.summary.groups > 2000
    report, stats = _distributed(str(big_tree), client)
    same_report(single, report)
    assert stats["tasks"] >= 8  # 4 shards per worker thread


def test_root_errors_raise_as_in_a_single_scan(client: Any, tmp_path: Path) -> None:
    from cellmap_schemas.errors import NodeNotFoundError

    with pytest.raises(NodeNotFoundError):
        dscan.scan_distributed(str(tmp_path / "missing"), client)


# ---- S3 ---------------------------------------------------------------------------------------
@pytest.fixture
def s3_bucket(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("dask-s3")
    gh.generate(out, datasets=3, groups=90, levels=2, broken_fraction=0.2, seed=8)
    s3.public_bucket("dask-bucket")
    gh.upload(out, "dask-bucket", endpoint_url=s3.endpoint, workers=16, client=s3.client())
    return "s3://dask-bucket"


def _options(s3: S3Server) -> dict[str, Any]:
    """What the workers need to reach the server: they were started before ``s3`` set the
    AWS variables, so these options are all they have."""
    return {"endpoint_url": s3.endpoint, "key": "testing", "secret": SECRET}


def test_s3_equal_and_split(client: Any, s3: S3Server, s3_bucket: str) -> None:
    opts = _options(s3)
    single = _single(s3_bucket, storage_options=opts)
    report, stats = _distributed(
        s3_bucket, client, storage_options=opts, split_after=40, concurrency=4
    )
    same_report(single, report)
    assert stats["tasks"] > 4 * 2  # shards handed subtrees back, which ran as more tasks
    assert client.run_on_scheduler(_ours) == 0  # nothing left behind


def test_failed_shard_is_unreadable_and_logs_no_secret(
    patched: Any, s3: S3Server, s3_bucket: str
) -> None:
    client = patched
    opts = _options(s3)
    single = _single(s3_bucket, storage_options=opts)
    victim = sorted({n.path.split("/", 1)[0] for n in single.nodes if n.path})[1]
    client.run(_failing_shards, victim + "/")
    report, stats = _distributed(s3_bucket, client, storage_options=opts, task_retries=1)
    assert stats["failed"] >= 1
    got = {n.path: n for n in report.nodes}
    failed = [n for n in report.nodes if "shard failed" in (n.error or "")]
    assert failed and all(n.status == "unreadable" for n in failed)
    assert all("injected failure under" in (n.error or "") for n in failed)
    assert any(n.path.startswith(victim + "/") for n in failed)
    for node in single.nodes:  # every node: the same verdict, or below a failed seed
        if node.path not in got or got[node.path] != node:
            assert any(node.path == f.path or node.path.startswith(f.path + "/") for f in failed)

    def below_failed(path: str) -> bool:
        return any(path == f.path or path.startswith(f.path + "/") for f in failed)

    kept = [n for n in single.nodes if not below_failed(n.path)]
    assert [n for n in report.nodes if not below_failed(n.path)] == kept
    assert report.summary.unreadable == sum(n.status == "unreadable" for n in kept) + len(failed)
    # the failure was logged by the workers, with the task's arguments redacted
    logs = "\n".join(
        msg for lines in client.get_worker_logs().values() for _, msg in lines
    ) + "\n".join(msg for _, msg in client.get_scheduler_logs())
    assert "Compute Failed" in logs  # (the task's repr, which may show its arguments)
    assert SECRET not in logs and s3.endpoint not in logs


# ---- faults -----------------------------------------------------------------------------------
def test_worker_killed_mid_task(patched: Any, big_tree: Path) -> None:
    client = patched
    single = _single(str(big_tree))
    pids = client.run(os.getpid)
    client.run(_slow_shards, 2.0)  # the first tasks of each worker are still running when shot
    out: dict[str, Any] = {}

    def scan() -> None:
        try:
            out["report"] = _distributed(str(big_tree), client, split_after=None)
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=scan)
    thread.start()
    deadline = time.monotonic() + 30
    victim: tuple[str, set[Any]] | None = None
    while victim is None and time.monotonic() < deadline:
        busy = {w: keys for w, keys in client.processing().items() if keys}
        if busy:
            worker, keys = sorted(busy.items())[0]
            time.sleep(0.3)  # well inside the task's 2 s wait
            os.kill(pids[worker], signal.SIGKILL)
            victim = (worker, set(keys))
        else:
            time.sleep(0.05)
    thread.join(90)
    assert victim is not None, "no task ever ran"
    assert "error" not in out, out.get("error")
    report, stats = out["report"]
    same_report(single, report)  # rerun elsewhere, counted once
    assert not stats["failed"]


def _ours(dask_scheduler: Any) -> int:
    """Tasks of distributed scans the scheduler knows of."""
    return sum(str(k).startswith("cellmap-scan") for k in dask_scheduler.tasks)


def test_ctrl_c_cancels_the_futures(patched: Any, big_tree: Path, tmp_path: Path) -> None:
    client = patched
    client.run(_slow_shards, 60.0)
    script = tmp_path / "interrupt.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, anyio
            from cellmap_schemas._scan.distributed import open_distributed_scan
            state = {{}}

            async def main():
                async with open_distributed_scan({str(big_tree)!r},
                                                 {client.scheduler.address!r}) as scan:
                    state["scan"] = scan
                    async def watch():
                        while not scan.tasks:
                            await anyio.sleep(0.05)
                        print("submitted", scan.tasks, flush=True)
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(watch)
                        async for _ in scan:
                            pass

            try:
                anyio.run(main, backend="asyncio")
            except KeyboardInterrupt:
                print("cancelled", state["scan"].cancelled, flush=True)
                sys.exit(130)
            print("finished", flush=True)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("submitted"), (line, proc.stderr.read() if proc.stderr else "")
        tasks = int(line.split()[1])
        deadline = time.monotonic() + 10  # submitted: on their way to the scheduler
        while client.run_on_scheduler(_ours) < tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.run_on_scheduler(_ours) == tasks
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert rest.split() == ["cancelled", str(tasks)], err

    deadline = time.monotonic() + 10
    while client.run_on_scheduler(_ours) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.run_on_scheduler(_ours) == 0


def test_a_crop_and_its_image_in_other_shards_are_judged_as_in_one_scan(
    client: Any, tmp_path: Path
) -> None:
    """``CROP101`` compares a crop with its reconstruction's image; when shards are cut between
    the two (here every shard hands its subtrees back at once), the crop must still be judged
    against the image, as a single-process scan judges it."""
    import json
    import shutil

    root = tmp_path / "bucket"
    shutil.copytree(EXAMPLE / "jrc_hela-2", root / "jrc_hela-2")
    crop = root / "jrc_hela-2/jrc_hela-2.zarr/recon-1/labels/groundtruth/crop1/mito/.zattrs"
    attrs = json.loads(crop.read_text())
    for ds in attrs["multiscales"][0]["datasets"]:
        for t in ds["coordinateTransformations"]:
            if t["type"] == "translation":
                t["translation"][1] += 1.0  # a quarter of the image's voxel: off the grid
    crop.write_text(json.dumps(attrs))
    single = _single(str(root))
    path = "jrc_hela-2/jrc_hela-2.zarr/recon-1/labels/groundtruth/crop1"
    found = [n for n in single.nodes if n.path == path]
    assert found and found[0].status == "invalid"
    report, stats = _distributed(str(root), client, split_after=1, concurrency=2)
    assert stats["tasks"] > 2  # the crawl was cut into many shards
    same_report(single, report)
