#!/usr/bin/env python3
"""Scan benchmark: ``cellmap-schemas scan`` against the original checking group by group.

A generated bucket of COSEM N5 multiscale groups (``scripts/generate_hierarchy.py``, metadata
only) is audited

* locally: ``cellmap-schemas scan DIR`` (one process, timed whole) vs the original 0.8.1 checking
  every group as its ``check`` command does (``parse_url`` -> ``N5FSStore`` -> ``zarr.open`` ->
  ``Group.from_zarr``, one process for all groups, timed whole), and the floor
  ``find DIR -type f | xargs cat``;
* on S3: a moto server on 127.0.0.1 behind ``latency_proxy.py`` (``--latency-ms`` per request),
  the same two plus ``fetch_floor.py`` (every object fetched by key, same concurrency). The
  original is timed on an evenly spaced subset of groups (``--original-s3-groups``) and reported
  per group, because its sequential reads need ~1.2 s per group at 20 ms;
* a memory-only scan of a larger local bucket (``--memory-groups``).

Every run is a child process: wall time from the parent, CPU and peak RSS from ``wait4``;
requests from the proxy's counters. The scan's JSON report is checked against truth.json.

    uv run python benchmarks/bench_scan.py                       # full run (~8 min on 2 cores)
    uv run python benchmarks/bench_scan.py --groups 200 --skip-original --memory-groups 0
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COSEM = "multiscale.cosem.Group"
BUCKET = "janelia-cosem-datasets"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


gh = _load("generate_hierarchy", REPO / "scripts" / "generate_hierarchy.py")
proxy_mod = _load("latency_proxy", HERE / "latency_proxy.py")

# Anyone may read and list, as on janelia-cosem-datasets (lets the aiohttp floor go unsigned).
PUBLIC_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        }
    ],
}

# The original's `check`, once per group, in one process (the original ships no console script;
# its CLI is `python -c "from cellmap_schemas.cli import cli; cli()" check URL MODEL`).
ORIGINAL_SCRIPT = r"""
import json, os, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import zarr
from pydantic import ValidationError
from rich.console import Console
from cellmap_schemas.cli import guess_store, parse_url
from cellmap_schemas.multiscale.cosem import Group
job = json.load(open(sys.argv[1]))
console = Console(file=open(os.devnull, "w"))
verdicts = {}
for path in job["paths"]:
    url = job["root"] + "/" + path
    try:
        stem, prefix, component = parse_url(url)
        store = guess_store(store_stem=stem, prefix=prefix)
        node = zarr.open(store, path=component, mode="r")
        Group.from_zarr(node)
        console.print(f"{url} validated successfully.")
        verdicts[path] = True
    except ValidationError as e:
        console.print(f"{url} failed validation:\n{e}")
        verdicts[path] = False
    except Exception as e:  # unreadable member (malformed JSON): check would crash here
        console.print(f"{url} error: {e!r}")
        verdicts[path] = False
json.dump({"verdicts": verdicts, "seconds": time.perf_counter() - t0}, sys.stdout)
"""

MOTO_SCRIPT = r"""
import bisect, sys, time
from moto.server import ThreadedMotoServer
if sys.argv[2] == "indexed":
    # moto answers a prefix listing by scanning every key of the bucket (~25 ms of CPU per
    # LIST at 14,000 keys, six GETs' worth); S3 answers it from a sorted index. Same results,
    # found by bisecting a sorted list of the key names (rebuilt when the key count changes).
    from moto.s3.models import FakeBucket, S3Backend
    _list = S3Backend.list_objects
    _index = {}
    class _Prefixed:
        def __init__(self, keys):
            self.keys = keys
    def list_objects(self, bucket, prefix, delimiter, marker, max_keys):
        if not prefix or type(bucket) is not FakeBucket:
            return _list(self, bucket, prefix, delimiter, marker, max_keys)
        n, names = _index.get(id(bucket), (-1, []))
        if n != len(bucket.keys):
            names = sorted(bucket.keys.keys())
            _index[id(bucket)] = (len(bucket.keys), names)
        lo = bisect.bisect_left(names, prefix)
        hi = bisect.bisect_left(names, prefix + "\U0010ffff")
        view = _Prefixed({k: bucket.keys[k] for k in names[lo:hi]})
        return _list(self, view, prefix, delimiter, marker, max_keys)
    S3Backend.list_objects = list_objects
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
if len(sys.argv) > 3:
    # Load the tree straight into the server's backend: the same objects as PUTs through HTTP
    # would make, in a tenth of the time.
    import os
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    root, bucket, policy = sys.argv[3], sys.argv[4], sys.argv[5]
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(bucket, "us-east-1")
    backend.put_bucket_policy(bucket, policy.encode())
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            key = os.path.relpath(path, root).replace(os.sep, "/")
            if key != "truth.json":
                with open(path, "rb") as f:
                    backend.put_object(bucket, key, f.read())
print("ready", flush=True)
sys.stdin.read()
server.stop()
"""


# ---- child processes -----------------------------------------------------------------------------
def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every timed child: ours, with bytecode caching on.

    With ``PYTHONDONTWRITEBYTECODE`` set, every run recompiles each imported module from source
    (about 1 s of CPU for the scan's imports here), which no installed copy pays.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra or {})
    return env


# Forks and times the command. Linux keeps the peak RSS of the image a process replaces at exec,
# so a child forked straight from this (large) process would report at least this process's
# peak; forked from this small launcher, it reports its own.
LAUNCHER = r"""
import json, os, sys, time
cmd, report, timeout = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
while True:
    done, status, ru = os.wait4(pid, os.WNOHANG)
    if done:
        break
    if time.perf_counter() - t0 > timeout:
        os.kill(pid, 9)
        done, status, ru = os.wait4(pid, 0)
        break
    time.sleep(0.002)
wall = time.perf_counter() - t0
with open(report, "w") as f:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "wall_s": wall,
               "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mib": ru.ru_maxrss / 1024}, f)
"""


def run_child(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout: Path | None = None,
    timeout: float = 1800,
) -> dict[str, Any]:
    """Run ``cmd``: its wall time, CPU (user+sys) and peak RSS, from ``wait4`` in a launcher."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rusage.json"
        with (
            open(stdout or os.devnull, "wb") as out,
            open(Path(tmp) / "stderr", "w+b") as err,
        ):
            subprocess.run(
                [sys.executable, "-S", "-c", LAUNCHER, json.dumps(list(cmd)), str(report),
                 str(timeout)],
                env=dict(env or child_env()),
                stdout=out,
                stderr=err,
                check=False,
            )  # fmt: skip
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        result: dict[str, Any] = json.loads(report.read_text())
    result.update(cmd=" ".join(cmd), stderr=stderr[-2000:])
    return result


def _scan_cmd(url: str, args: argparse.Namespace) -> list[str]:
    exe = Path(sys.executable).parent / "cellmap-schemas"
    cmd = [str(exe), "scan", url, *args.scan_arg]
    if args.concurrency and "--concurrency" not in args.scan_arg:
        cmd += ["--concurrency", str(args.concurrency)]
    return cmd


def _scan_report(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _agreement(report: dict[str, Any] | None, truth: Any, prefix: str = "") -> dict[str, Any]:
    """How many truth roots the scan judged as the truth says."""
    if report is None or "nodes" not in report:
        return {"checked": 0, "agree": 0, "note": "no JSON report with nodes"}
    broken = {b.path for b in truth.broken()}
    by_path = {n["path"]: n for n in report["nodes"]}
    checked = agree = 0
    missing = []
    for d in truth.datasets.values():
        for root, model in d.roots.items():
            node = by_path.get(f"{prefix}{root}")
            checked += 1
            res = (node or {}).get("results", {}).get(model)
            if res is None:
                missing.append(root)
                continue
            agree += bool(res["valid"]) is (root not in broken)
    return {"checked": checked, "agree": agree, "missing": len(missing), "examples": missing[:3]}


def _original(
    python: str, root: str, paths: Sequence[str], env: Mapping[str, str], work: Path
) -> dict[str, Any]:
    job = work / "original-job.json"
    job.write_text(json.dumps({"root": root, "paths": list(paths)}))
    script = work / "original_check.py"
    script.write_text(ORIGINAL_SCRIPT)
    out = work / "original-out.json"
    r = run_child([python, str(script), str(job)], env=env, stdout=out)
    try:
        r["result"] = json.loads(out.read_bytes())
    except ValueError:
        r["result"] = None
    return r


def _original_agreement(result: dict[str, Any] | None, truth: Any) -> dict[str, int]:
    if not result:
        return {"checked": 0, "agree": 0}
    broken = {b.path for b in truth.broken()}
    v = result["verdicts"]
    return {"checked": len(v), "agree": sum(ok is (p not in broken) for p, ok in v.items())}


def _cosem_roots(truth: Any) -> list[str]:
    return [r for d in truth.datasets.values() for r, m in d.roots.items() if m == COSEM]


def _subset(items: Sequence[str], n: int) -> list[str]:
    if n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


# ---- S3 plumbing ---------------------------------------------------------------------------------
class S3Env:
    """moto in a child process, a latency proxy in another; boto3 for set-up."""

    def __init__(
        self, latency_ms: float, *, indexed_listing: bool = True, preload: Path | None = None
    ) -> None:
        """``preload``: a tree loaded into bucket BUCKET (public) before the server answers."""
        self.moto_port = proxy_mod.free_port()
        mode = "indexed" if indexed_listing else "stock"
        extra = [str(preload), BUCKET, json.dumps(PUBLIC_POLICY)] if preload else []
        self.moto = subprocess.Popen(
            [sys.executable, "-c", MOTO_SCRIPT, str(self.moto_port), mode, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.moto.stdout is not None
        if self.moto.stdout.readline().strip() != b"ready":
            raise RuntimeError("moto did not start")
        self.moto_url = f"http://127.0.0.1:{self.moto_port}"
        self.proxy = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "latency_proxy.py"),
                "--target",
                self.moto_url,
                "--delay-ms",
                str(latency_ms),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proxy.stdout is not None
        self.proxy_url = self.proxy.stdout.readline().decode().strip()
        for _ in range(200):
            try:
                proxy_mod.proxy_stats(self.proxy_url)
                break
            except OSError:
                time.sleep(0.05)
        self.env = child_env(
            {
                "AWS_ENDPOINT_URL": self.proxy_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            }
        )
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            self.env.pop(var, None)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.moto_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
            config=Config(max_pool_connections=32),
        )

    def requests(self) -> int:
        return int(proxy_mod.proxy_stats(self.proxy_url)["requests"])  # type: ignore[arg-type]

    def stats(self) -> dict[str, Any]:
        return proxy_mod.proxy_stats(self.proxy_url)

    def reset(self) -> None:
        proxy_mod.reset_stats(self.proxy_url)

    def close(self) -> None:
        self.proxy.terminate()
        self.proxy.wait(10)
        if self.moto.stdin:
            self.moto.stdin.close()
        try:
            self.moto.wait(10)
        except subprocess.TimeoutExpired:
            self.moto.kill()


# ---- the benchmark -------------------------------------------------------------------------------
def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _per(x: float, n: int) -> float | None:
    return x / n if n else None


def bench_local(args: argparse.Namespace, tree: Path, truth: Any, work: Path) -> dict[str, Any]:
    groups = truth.roots
    res: dict[str, Any] = {"groups": groups, "files": truth.files}
    floor_cmd = ["bash", "-c", f"find {tree} -type f -print0 | xargs -0 cat > /dev/null"]
    run_child(floor_cmd)  # warm the page cache
    res["floor"] = min((run_child(floor_cmd) for _ in range(2)), key=lambda r: r["wall_s"])
    _log(f"local floor (find | xargs cat): {res['floor']['wall_s']:.2f} s")

    # Warm-up: bytecode caches of both implementations, imports in the page cache.
    run_child(_scan_cmd(str(REPO / "examples" / "cellmap-bucket"), args))
    if not args.skip_original:
        _original(args.original_python, str(tree), _cosem_roots(truth)[:2], child_env(), work)

    out = work / "scan-local.json"
    ours = run_child(_scan_cmd(str(tree), args), stdout=out)
    report = _scan_report(out)
    ours["agreement"] = _agreement(report, truth)
    if report:
        ours["report_summary"] = report.get("summary")
        ours["requests"] = (report.get("summary") or {}).get("requests")
    res["ours"] = ours
    _log(f"local scan: {ours['wall_s']:.2f} s rc={ours['rc']} agreement={ours['agreement']}")
    if ours["rc"] not in (0, 1):
        _log(ours["stderr"])

    if not args.skip_original:
        orig = _original(args.original_python, str(tree), _cosem_roots(truth), child_env(), work)
        orig["agreement"] = _original_agreement(orig.pop("result", None), truth)
        res["original"] = orig
        res["speedup"] = orig["wall_s"] / ours["wall_s"]
        _log(f"local original: {orig['wall_s']:.2f} s; speedup {res['speedup']:.1f}x")
    return res


def bench_s3(args: argparse.Namespace, tree: Path, truth: Any, work: Path) -> dict[str, Any]:
    res: dict[str, Any] = {"latency_ms": args.latency_ms, "concurrency": args.concurrency}
    t0 = time.perf_counter()
    s3 = S3Env(args.latency_ms, indexed_listing=not args.stock_moto, preload=tree)
    res["moto_listing"] = "stock" if args.stock_moto else "indexed"
    try:
        res["upload_s"] = time.perf_counter() - t0
        _log(f"moto started with the tree loaded in {res['upload_s']:.1f} s")
        groups = truth.roots

        s3.reset()
        floor = run_child(
            [
                sys.executable,
                str(HERE / "fetch_floor.py"),
                "--root",
                str(tree),
                "--bucket",
                BUCKET,
                "--concurrency",
                str(args.concurrency),
                "--json",
            ],
            env=s3.env,
            stdout=work / "floor.json",
        )
        floor["proxy"] = s3.stats()
        floor["requests"] = floor["proxy"]["requests"]
        try:
            floor["inner"] = json.loads((work / "floor.json").read_bytes())
        except ValueError:
            floor["inner"] = None
        res["floor"] = floor
        _log(f"S3 fetch floor: {floor['wall_s']:.2f} s, {floor['requests']} requests")

        s3.reset()
        out = work / "scan-s3.json"
        ours = run_child(_scan_cmd(f"s3://{BUCKET}", args), env=s3.env, stdout=out)
        ours["proxy"] = s3.stats()
        ours["requests"] = ours["proxy"]["requests"]
        report = _scan_report(out)
        ours["agreement"] = _agreement(report, truth)
        if report:
            ours["report_summary"] = report.get("summary")
        ours["requests_per_group"] = _per(ours["requests"], groups)
        ours["cpu_ms_per_request"] = _per(1000 * ours["cpu_s"], ours["requests"])
        ours["per_group_ms"] = 1000 * ours["wall_s"] / groups
        res["ours"] = ours
        res["vs_floor"] = ours["wall_s"] / floor["wall_s"]
        _log(
            f"S3 scan: {ours['wall_s']:.2f} s, {ours['requests']} requests, rc={ours['rc']}, "
            f"{res['vs_floor']:.2f}x floor, agreement={ours['agreement']}"
        )
        if ours["rc"] not in (0, 1):
            _log(ours["stderr"])

        if not args.skip_original and args.original_s3_groups:
            subset = _subset(_cosem_roots(truth), args.original_s3_groups)
            s3.reset()
            orig = _original(args.original_python, f"s3://{BUCKET}", subset, s3.env, work)
            orig["proxy"] = s3.stats()
            orig["requests"] = orig["proxy"]["requests"]
            orig["agreement"] = _original_agreement(orig.pop("result", None), truth)
            orig["groups"] = len(subset)
            orig["requests_per_group"] = _per(orig["requests"], len(subset))
            orig["cpu_ms_per_request"] = _per(1000 * orig["cpu_s"], orig["requests"])
            orig["per_group_ms"] = 1000 * orig["wall_s"] / len(subset)
            orig["extrapolated_wall_s"] = orig["per_group_ms"] * groups / 1000
            res["original"] = orig
            res["speedup_per_group"] = orig["per_group_ms"] / ours["per_group_ms"]
            _log(
                f"S3 original: {orig['wall_s']:.2f} s for {len(subset)} groups "
                f"({orig['requests_per_group']:.1f} requests/group); "
                f"per-group speedup {res['speedup_per_group']:.0f}x"
            )
    finally:
        s3.close()
    return res


def bench_memory(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    tree = work / "memory-bucket"
    t0 = time.perf_counter()
    truth = gh.generate(
        tree,
        datasets=max(1, args.memory_groups // 100),
        groups=args.memory_groups,
        levels=args.levels,
        broken_fraction=args.broken_fraction,
        seed=args.seed,
    )
    gen_s = time.perf_counter() - t0
    _log(f"generated {truth.roots} groups / {truth.files} files in {gen_s:.1f} s")
    run_child(["bash", "-c", f"find {tree} -type f -print0 | xargs -0 cat > /dev/null"])
    ours = run_child(_scan_cmd(str(tree), args), stdout=work / "scan-memory.out")
    res = {"groups": truth.roots, "files": truth.files, "generate_s": gen_s, "ours": ours}
    _log(f"memory run: {ours['maxrss_mib']:.0f} MiB peak, {ours['wall_s']:.1f} s")
    shutil.rmtree(tree, ignore_errors=True)
    return res


def _reusable(tree: Path, params: Mapping[str, Any]) -> Any:
    """The truth of a tree kept from an earlier run with the same parameters, else None."""
    try:
        truth = gh.load_truth(tree / "truth.json")
    except (OSError, ValueError):
        return None
    lo, _, hi = str(params["levels"]).partition("-")
    same = (
        truth.layout == "cosem"
        and truth.seed == params["seed"]
        and truth.levels == f"{lo}-{hi or lo}"
        and truth.broken_fraction == params["broken_fraction"]
        and truth.roots == params["groups"]
        and len(truth.datasets) == params["datasets"]
    )
    return truth if same else None


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def _row(name: str, r: dict[str, Any], groups: int, requests: int | None, ratio: str) -> str:
    return (
        f"| {name} | {_fmt(r['wall_s'])} | {_fmt(1000 * r['wall_s'] / groups, '.1f')} | "
        f"{_fmt(r['cpu_s'])} | {ratio} | "
        f"{_fmt(_per(requests, groups) if requests else None, '.1f')} | "
        f"{_fmt(_per(1000 * r['cpu_s'], requests) if requests else None, '.3f')} | "
        f"{_fmt(r['maxrss_mib'], '.0f')} |"
    )


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table (ratios: the other run's wall time over ours)."""
    rows = [
        "| run | wall s | ms/group | CPU s | ratio | requests/group | CPU ms/request "
        "| peak RSS MiB |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    loc = results.get("local")
    if loc:
        g = loc["groups"]
        ours, floor = loc["ours"], loc["floor"]
        rows.append(_row(f"local: find \\| xargs cat ({loc['files']} files)", floor, g, None,
                         f"{_fmt(floor['wall_s'] / ours['wall_s'])}x ours"))  # fmt: skip
        rows.append(_row(f"local: ours, scan {g} groups", ours, g, ours.get("requests"), ""))
        if "original" in loc:
            o = loc["original"]
            rows.append(_row(f"local: original, check x {g}", o, g, None,
                             f"**{_fmt(loc['speedup'], '.1f')}x** ours"))  # fmt: skip
    s3 = results.get("s3")
    if s3:
        lat, c = s3["latency_ms"], s3["concurrency"]
        f, ours = s3["floor"], s3["ours"]
        g = results["groups"]
        rows.append(_row(f"S3 +{lat:g} ms: fetch floor, c={c}", f, g, f["requests"],
                         f"{_fmt(f['wall_s'] / ours['wall_s'])}x ours"))  # fmt: skip
        rows.append(_row(f"S3 +{lat:g} ms: ours, scan {g} groups, c={c}", ours, g,
                         ours["requests"], f"**{_fmt(s3['vs_floor'])}x floor**"))  # fmt: skip
        if "original" in s3:
            o = s3["original"]
            speedup = f"**{_fmt(s3['speedup_per_group'], '.0f')}x** ours per group"
            rows.append(_row(f"S3 +{lat:g} ms: original, check x {o['groups']} (subset)", o,
                             o["groups"], o["requests"], speedup))  # fmt: skip
    mem = results.get("memory")
    if mem:
        o = mem["ours"]
        rows.append(_row(f"local: ours, scan {mem['groups']} groups ({mem['files']} files)", o,
                         mem["groups"], None, "memory run"))  # fmt: skip
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--groups", type=int, default=2000, help="COSEM multiscale groups")
    p.add_argument("--datasets", type=int, default=20)
    p.add_argument("--levels", default="6")
    p.add_argument("--broken-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-ms", type=float, default=20.0, help="added per S3 request")
    p.add_argument("--concurrency", type=int, default=64, help="scan and fetch-floor concurrency")
    p.add_argument("--skip-original", action="store_true")
    p.add_argument(
        "--stock-moto",
        action="store_true",
        help="keep moto's listing, which scans every key of the bucket per LIST",
    )
    p.add_argument("--skip-local", action="store_true")
    p.add_argument("--skip-s3", action="store_true")
    p.add_argument("--original-s3-groups", type=int, default=20, help="subset timed on S3")
    p.add_argument("--memory-groups", type=int, default=20000, help="0 skips the memory run")
    p.add_argument(
        "--scan-arg",
        action="append",
        default=None,
        help="argument passed to `cellmap-schemas scan` (repeatable; default: --format json)",
    )
    p.add_argument("--original-python", default=None, help="python of the original's venv")
    p.add_argument("--workdir", default=None, help="keep the trees and outputs here")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    if args.scan_arg is None:
        args.scan_arg = ["--format", "json"]
    if not args.skip_original and args.original_python is None:
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / "setup-original-env.sh")],
            check=True,
            capture_output=True,
            text=True,
        )
        args.original_python = out.stdout.strip().splitlines()[-1]

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-scan-"))
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "bucket"
    t0 = time.perf_counter()
    params = dict(
        datasets=args.datasets,
        groups=args.groups,
        levels=args.levels,
        broken_fraction=args.broken_fraction,
        seed=args.seed,
    )
    truth = _reusable(tree, params)
    if truth is None:
        truth = gh.generate(tree, **params)
    results: dict[str, Any] = {
        "groups": truth.roots,
        "files": truth.files,
        "generate_s": time.perf_counter() - t0,
        "cpus": os.cpu_count(),
        "scan_args": args.scan_arg,
    }
    _log(f"generated {truth.roots} groups, {truth.files} files in {results['generate_s']:.1f} s")
    try:
        if not args.skip_local:
            results["local"] = bench_local(args, tree, truth, work)
        if not args.skip_s3:
            results["s3"] = bench_s3(args, tree, truth, work)
        if args.memory_groups:
            results["memory"] = bench_memory(args, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
