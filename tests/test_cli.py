"""The ``cellmap-schemas`` command line: inspect, check, models, --version, --help."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

import cellmap_schemas
from cellmap_schemas.cli import app
from cellmap_schemas.multiscale import cosem
from cellmap_schemas.n5_wrap import spec_to_n5_array, spec_to_n5_group
from cellmap_schemas.registry import MODELS
from cellmap_schemas.synchronous import read


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = app(argv, result_action="return_value")
    except SystemExit as exc:  # a usage error: cyclopts exits with the status
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point in a fresh interpreter (exit status, streams, no test harness)."""
    return subprocess.run(
        [sys.executable, "-m", "cellmap_schemas.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def write_cosem(root: Path, *, broken: bool = False) -> Path:
    """A COSEM multiscale group as N5 documents; ``broken`` breaks two rules in s1."""
    data = np.zeros((8, 8), dtype="uint8")
    group = cosem.Group.from_arrays(
        arrays=[data, data[::2, ::2]],
        paths=["s0", "s1"],
        scales=[[4.0, 4.0], [8.0, 8.0]],
        translates=[[0.0, 0.0], [2.0, 2.0]],  # the half-voxel offset of a 2x level
        axes=["y", "x"],
        units=["nm", "nm"],
    )
    (root / "em").mkdir(parents=True)
    (root / "attributes.json").write_text(json.dumps({"n5": "2.0.0"}))
    (root / "em" / "attributes.json").write_text(json.dumps(spec_to_n5_group(group)))
    for name, member in group.members.items():
        doc = spec_to_n5_array(member)
        if broken and name == "s1":
            doc["transform"]["scale"] = [9.0, 9.0]
            doc["transform"]["units"] = ["nm", "um"]
        (root / "em" / name).mkdir()
        (root / "em" / name / "attributes.json").write_text(json.dumps(doc))
    return root / "em"


def assert_one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in err


# ---- top level -------------------------------------------------------------------------------
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        app(["--version"])
    assert info.value.code in (0, None)
    assert capsys.readouterr().out.strip() == cellmap_schemas.__version__


def test_help_lists_commands_without_importing_storage() -> None:
    code = (
        "import sys\nfrom cellmap_schemas.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'zarr', 's3fs', 'fsspec', 'tensorstore'} & set(sys.modules)\n"
        "print('heavy' if heavy else 'light')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for command in ("inspect", "check", "models", "scan", "--version"):
        assert command in out.stdout
    assert "Exit status: 0 valid or done, 1 invalid, 2 unreadable or bad usage" in out.stdout
    assert out.stdout.rstrip().endswith("light")


@pytest.mark.parametrize("command", ["inspect", "check", "models", "rules", "scan"])
def test_every_command_has_help_with_examples_and_exit_status(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        app([command, "--help"])
    out = capsys.readouterr().out
    assert "For example:" in out
    assert f"cellmap-schemas {command}" in out
    assert "Exit status:" in out


def test_scan_is_registered_lazily_and_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        app(["scan", "--help"])
    assert info.value.code in (0, None)
    assert "Usage: cellmap-schemas scan" in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "cellmap-schemas"
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == cellmap_schemas.__version__


def test_models_lists_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["models"], capsys)
    assert rc == 0
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(MODELS)
    for line, info in zip(lines, MODELS.values(), strict=True):
        assert line.split(None, 2)[1] == info.kind
        assert line.endswith(info.description)


def test_bad_usage_exits_2() -> None:
    proc = cli("check", "/tmp")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    proc = cli("frobnicate")
    assert proc.returncode == 2
    # usage errors are one line, like every other error
    assert_one_error_line(proc.stderr, 'Unknown command "frobnicate"', "scan")
    proc = cli("scan", "examples/cellmap-bucket", "--concurrency", "x")
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "--concurrency")


# ---- inspect ---------------------------------------------------------------------------------
def test_inspect_prints_plain_json_when_piped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    em = write_cosem(tmp_path / "data.n5")
    rc, out, err = run(["inspect", str(em)], capsys)
    assert (rc, err) == (0, "")
    assert "\x1b[" not in out
    printed = json.loads(out)
    assert printed == msgspec.json.decode(msgspec.json.encode(read(str(em))))
    assert printed["members"]["s1"]["shape"] == [4, 4]
    assert printed["attributes"]["axes"] == ["x", "y"]


def test_inspect_depth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_cosem(tmp_path / "data.n5")
    rc, out, _ = run(["inspect", str(tmp_path / "data.n5"), "--depth", "1"], capsys)
    assert rc == 0
    assert json.loads(out)["members"]["em"]["members"] == {}
    rc, _, err = run(["inspect", str(tmp_path / "data.n5"), "--depth", "-1"], capsys)
    assert rc == 2
    assert_one_error_line(err, "--depth must be 0 or more")


def test_inspect_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    root = tmp_path / "wide.n5"
    (root).mkdir()
    (root / "attributes.json").write_text('{"n5": "2.0.0"}')
    for i in range(300):
        doc = {"dimensions": [4], "blockSize": [2], "dataType": "uint8", "note": "x" * 400}
        (root / f"a{i}").mkdir()
        (root / f"a{i}" / "attributes.json").write_text(json.dumps(doc))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cellmap_schemas.cli", "inspect", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"{\n"  # like `| head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert err == ""


def test_inspect_is_coloured_on_a_terminal(tmp_path: Path) -> None:
    em = write_cosem(tmp_path / "data.n5")
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cellmap_schemas.cli", "inspect", str(em / "s0")],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    text = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "\x1b[" in text  # ANSI colour codes
    assert '"pixelResolution"' in text


def test_inspect_shows_invalid_specs_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = tmp_path / "odd.n5"
    node.mkdir()
    doc = {"dimensions": [4, "x"], "blockSize": [2, 2], "dataType": "uint8"}
    (node / "attributes.json").write_text(json.dumps(doc))
    rc, out, err = run(["inspect", str(node)], capsys)
    assert rc == 0
    assert json.loads(out)["shape"] == ["x", 4]
    assert err.startswith(f"warning: {node}: not a valid array or group spec")
    assert "shape[0]" in err


@pytest.mark.parametrize(
    ("name", "content", "cause"),
    [
        ("attributes.json", b'{"n5": "2.0.0",', "attributes.json: invalid JSON"),
        (".zarray", b"\x89HDF\r\n\x1a\n\x00", ".zarray: not UTF-8 text (byte 0x89 at offset 0)"),
        (".zattrs", b"{}", "holds .zattrs but no .zgroup or .zarray: not a Zarr v2 node"),
        (".zgroup", b"[2]", ".zgroup: expected a JSON object, got an array"),
        ("zarr.json", b"\x00\x01\x02\x03", "zarr.json: contains NUL bytes"),
        ("notes.txt", b"just text", "no N5 or Zarr metadata found (looked for zarr.json"),
    ],
)
def test_unreadable_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, cause: str
) -> None:
    node = tmp_path / "node"
    node.mkdir()
    (node / name).write_bytes(content)
    for command in (["inspect", str(node)], ["check", str(node), "multiscale.cosem.Group"]):
        rc, out, err = run(command, capsys)
        assert rc == 2
        assert out == ""
        assert_one_error_line(err, f"error: {node}", cause)


def test_missing_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "absent.n5" / "em")
    for command in (["inspect", url], ["check", url, "multiscale.cosem.Array"]):
        rc, _, err = run(command, capsys)
        assert rc == 2
        assert_one_error_line(err, f"error: {url}: not found")


def test_errors_in_a_real_process_have_no_traceback(tmp_path: Path) -> None:
    node = tmp_path / "bad.zarr"
    node.mkdir()
    (node / ".zgroup").write_text('{"zarr_format": 2}')
    (node / ".zattrs").write_bytes(b"{nope")
    proc = cli("inspect", str(node))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert_one_error_line(proc.stderr, f"{node}/.zattrs: invalid JSON")
    proc = cli("check", str(tmp_path / "missing"), "multiscale.cosem.Group")
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, f"{tmp_path / 'missing'}: not found")


def test_relative_url_is_named_as_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(["inspect", "nowhere.zarr"], capsys)
    assert rc == 2
    assert_one_error_line(err, str(tmp_path / "nowhere.zarr"), "not found")


# ---- check -----------------------------------------------------------------------------------
def test_check_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    em = write_cosem(tmp_path / "data.n5")
    rc, out, err = run(["check", str(em), "multiscale.cosem.Group"], capsys)
    assert (rc, err) == (0, "")
    assert out == f"{em}: valid multiscale.cosem.Group\n"
    rc, out, _ = run(["check", str(em / "s1"), "multiscale.cosem.Array"], capsys)
    assert rc == 0
    rc, out, _ = run(["check", str(em), "multiscale.neuroglancer_n5.Group"], capsys)
    assert rc == 0


def test_check_invalid_prints_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    em = write_cosem(tmp_path / "data.n5", broken=True)
    rc, out, err = run(["check", str(em), "multiscale.cosem.Group"], capsys)
    assert rc == 1
    assert err == ""
    head, *problems = out.strip().splitlines()
    assert head.startswith(f"{em}: invalid multiscale.cosem.Group (")
    assert len(problems) >= 2
    text = "\n".join(problems)
    assert "members.s1.attributes" in text
    assert all(line.startswith("  ") and ": " in line for line in problems)
    # the same array alone: its own rule failures, located in its attributes
    rc, out, _ = run(["check", str(em / "s1"), "multiscale.cosem.Array"], capsys)
    assert rc == 1
    assert "attributes" in out


def test_check_wrong_kind_is_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    em = write_cosem(tmp_path / "data.n5")
    rc, out, _ = run(["check", str(em), "multiscale.cosem.Array"], capsys)
    assert rc == 1
    assert "  (root): is a group; multiscale.cosem.Array describes arrays" in out
    rc, out, _ = run(["check", str(em / "s0"), "multiscale.neuroglancer_n5.Group"], capsys)
    assert rc == 1
    assert "  (root): is an array; multiscale.neuroglancer_n5.Group describes groups" in out


def test_check_unknown_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(["check", str(tmp_path), "multiscale.cosem.Grop"], capsys)
    assert (rc, out) == (2, "")
    assert_one_error_line(
        err, "unknown model 'multiscale.cosem.Grop'", "did you mean multiscale.cosem.Group"
    )
    rc, _, err = run(["check", str(tmp_path), "cosem.Array"], capsys)
    assert rc == 2
    assert "multiscale.cosem.Array" in err


def test_bad_storage_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(["inspect", str(tmp_path), "--storage-option", "anon"], capsys)
    assert rc == 2
    assert_one_error_line(err, "storage option 'anon' is not of the form key=value")


# ---- S3 --------------------------------------------------------------------------------------
def test_s3_public_bucket_anonymously(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cosem(tmp_path / "data.n5")
    s3.public_bucket("cosem-public")
    s3.upload_dir("cosem-public", tmp_path / "data.n5", "jrc/data.n5")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    url = "s3://cosem-public/jrc/data.n5/em"
    rc, out, _ = run(["check", url, "multiscale.cosem.Group"], capsys)
    assert (rc, out) == (0, f"{url}: valid multiscale.cosem.Group\n")
    rc, out, _ = run(["inspect", url, "--storage-option", "anon=true"], capsys)
    assert rc == 0
    assert sorted(json.loads(out)["members"]) == ["s0", "s1"]


def test_s3_private_bucket_without_credentials(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cosem(tmp_path / "data.n5")
    s3.client().create_bucket(Bucket="cosem-private")
    s3.upload_dir("cosem-private", tmp_path / "data.n5", "data.n5")
    url = "s3://cosem-private/data.n5/em"
    rc, _, _ = run(["check", url, "multiscale.cosem.Group"], capsys)
    assert rc == 0  # with the test credentials
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    for command in (["inspect", url], ["check", url, "multiscale.cosem.Group"]):
        rc, out, err = run(command, capsys)
        assert (rc, out) == (2, "")
        assert_one_error_line(err, "error: s3://cosem-private/data.n5", "access denied")
    proc = cli(
        "inspect",
        url,
        env={k: v for k, v in os.environ.items() if "AWS_" not in k}
        | {
            "AWS_ENDPOINT_URL": s3.endpoint,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        },
    )
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "s3://cosem-private/data.n5", "access denied")


@pytest.mark.parametrize("argv", [["models"], ["rules"], ["--help"], ["check", "--help"]])
def test_a_full_disk_is_one_error_line_naming_stdout(argv: list[str]) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "cellmap_schemas.cli", *argv],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "stdout", "No space left on device")


def test_the_version_is_the_installed_distributions() -> None:
    """``__about__`` is the one place the version is written; the build reads it from there."""
    from importlib.metadata import version

    assert cellmap_schemas.__version__ == version("cellmap-schemas")
