"""The local store's own machinery: where it reads (from the mount table, then
from what its batches cost: :class:`cellmap_schemas.io._pace.Pace`), and the real paths its
listings remember."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io import open_store
from cellmap_schemas.io._local import LocalStore, Scope, scan_batch
from cellmap_schemas.io._pace import LOCAL_FILESYSTEMS, THREADS, Pace, filesystem_of

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
40 27 0:40 / /nrs rw,relatime shared:5 - nfs4 server:/export/nrs rw,vers=4.2
41 40 0:41 / /nrs/cellmap/scratch rw - xfs /dev/sdb1 rw
42 27 0:42 / /mnt/my\\040data rw - fuse.sshfs host:/data rw
43 27 0:43 / /mnt/odd\\134name rw - tmpfs tmpfs rw
"""


@pytest.mark.parametrize(
    ("path", "fstype"),
    [
        ("/", "ext4"),
        ("/home/user/data.n5", "ext4"),
        ("/nrs", "nfs4"),
        ("/nrs/cellmap/jrc_hela-2.n5", "nfs4"),
        ("/nrs/cellmap/scratch/crop.zarr", "xfs"),  # the deepest mount holding the path
        ("/nrs/cellmap/scratchy", "nfs4"),  # a prefix of a mount point is not under it
        ("/mnt/my data/em.n5", "fuse.sshfs"),  # octal escapes in mount points
        ("/mnt/odd\\name", "tmpfs"),
        ("/proc/1/root", "proc"),
    ],
)
def test_filesystem_of_reads_the_deepest_mount_holding_the_path(path: str, fstype: str) -> None:
    assert filesystem_of(path, MOUNTINFO) == fstype


def test_filesystem_of_without_a_holding_mount_or_a_table() -> None:
    assert filesystem_of("/data", "27 1 254:0 / /srv rw - ext4 /dev/vda rw\n") is None
    assert filesystem_of("/data", "garbage line\n\n") is None


@pytest.mark.skipif(not os.path.exists("/proc/self/mountinfo"), reason="Linux mount table")
def test_filesystem_of_this_machines_temporary_directory(tmp_path: Path) -> None:
    # the kernel's own table: tmp_path lies on some filesystem it names
    fstype = filesystem_of(os.path.realpath(tmp_path))
    assert isinstance(fstype, str) and fstype
    with open("/proc/self/mountinfo") as f:
        assert f" - {fstype} " in f.read()


def test_a_local_filesystem_starts_inline_and_follows_the_cost() -> None:
    pace = Pace(local=True)
    assert pace.inline and pace.limiter.total_tokens == 1
    pace.note(256, 256 * 20e-6)  # page cache
    assert pace.inline
    pace.note(8, 8 * 5e-3)  # too few paths to count
    assert pace.inline
    for _ in range(3):
        pace.note(256, 256 * 150e-6)  # a cold disk: worker threads
    assert not pace.inline and pace.limiter.total_tokens == THREADS
    pace.note(256, 256 * 20e-6)  # one cached batch is not yet the cache
    assert not pace.inline
    for _ in range(6):
        pace.note(256, 256 * 20e-6)
    assert pace.inline


def test_one_slow_batch_does_not_switch() -> None:
    pace = Pace(local=True)
    for _ in range(5):
        pace.note(256, 256 * 20e-6)
    pace.note(256, 256 * 200e-6)
    assert pace.limiter.total_tokens == 1


def test_other_filesystems_always_read_on_many_threads() -> None:
    pace = Pace(local=False)
    assert not pace.inline and pace.limiter.total_tokens == THREADS
    for _ in range(10):
        pace.note(256, 256 * 1e-6)
    assert pace.limiter.total_tokens == THREADS


@pytest.mark.skipif(sys.platform != "linux", reason="Linux mount table")
def test_a_store_on_this_machines_disk_reads_everything_at_its_pace(tmp_path: Path) -> None:
    fstype = filesystem_of(os.path.realpath(tmp_path))
    for i in range(300):
        (tmp_path / f"f{i}").write_bytes(str(i).encode())

    keys = [f"f{i}" for i in range(300)] + ["missing"]

    async def main() -> list[Any]:
        async with open_store(str(tmp_path)) as store:
            assert isinstance(store, LocalStore)
            assert store._pace.local == (fstype in LOCAL_FILESYSTEMS)
            first = await store.get_many(keys), await store.list_many(["", "f0"])
            store._pace.limiter.total_tokens = THREADS  # as after a cold batch: worker threads
            assert not store._pace.inline
            return [first, (await store.get_many(keys), await store.list_many(["", "f0"]))]

    inline, threaded = anyio.run(main)
    assert inline == threaded  # the same answers on the loop's thread and on worker threads
    assert inline[0] == [str(i).encode() for i in range(300)] + [None]
    assert sorted(inline[1][0][1]) == sorted(f"f{i}" for i in range(300))


def test_listings_with_remembered_real_paths_agree_with_fresh_ones(tmp_path: Path) -> None:
    """A scope remembers each listed directory's real path; listing through links inside the
    root (and a loop back up) gives what a scope that remembers nothing gives."""
    root = tmp_path / "root"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "f.json").write_text("{}")
    (root / "a" / "link").symlink_to(root / "a" / "b")  # inside the root
    (root / "a" / "b" / "up").symlink_to(root / "a")  # a loop
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "a" / "out").symlink_to(outside)
    keys = ["", "a", "a/b", "a/b/c", "a/link", "a/link/c", "a/b/up", "a/b/up/b", "a/out", "a/x"]
    url = f"file://{root}"

    def fresh(key: str) -> object:
        result = scan_batch([(key, url)], Scope.of(str(root), url, False))[0]
        return result if isinstance(result, tuple) else str(result)

    scope = Scope.of(str(root), url, False)
    listed = scan_batch([(k, url) for k in keys], scope)
    again = scan_batch([(k, url) for k in keys], scope)  # now every prefix is remembered
    for key, first, second in zip(keys, listed, again, strict=True):
        got1 = first if isinstance(first, tuple) else str(first)
        got2 = second if isinstance(second, tuple) else str(second)
        assert got1 == got2 == fresh(key), key
    assert listed[keys.index("a/b")] == (["c"], [])  # ``up`` leads back into its ancestors
    assert "not followed" in str(listed[keys.index("a/out")])


def test_a_failed_read_names_the_keys_url(tmp_path: Path) -> None:
    """Batched reads build each URL from the path they read: the message names ``url_of``."""
    odd = tmp_path / "a dir=1" / "ü#x"
    odd.mkdir(parents=True)
    os.mkfifo(odd / "attributes.json")
    key = "a dir=1/ü#x/attributes.json"

    async def main() -> tuple[str, list[bytes | StoreError | None]]:
        async with open_store(str(tmp_path)) as store:
            return store.url_of(key), await store.get_many([key])

    url, (got,) = anyio.run(main)
    assert isinstance(got, StoreError)
    assert str(got).startswith(f"{url}: not a regular file")


def test_a_full_scope_cache_forgets_its_oldest_quarter_and_keeps_the_root() -> None:
    from cellmap_schemas.io._local import Scope, _trim

    cache: dict[str, bool] = {"": True}
    cache.update((f"d{i}", i % 2 == 0) for i in range(Scope.CACHE + 1))
    newest = list(cache)[-10:]
    _trim(cache)
    assert cache[""] is True
    assert len(cache) <= Scope.CACHE - Scope.CACHE // 4 + 3  # a quarter gone, the root back
    assert "d0" not in cache and all(k in cache for k in newest)


def test_a_listing_remembers_its_subdirectories_and_not_its_links(tmp_path: Path) -> None:
    """Directories a listing met are known to lie inside the root without an ``lstat`` of their
    own; a link among them is not taken for one, so a read through it is still refused."""
    outside = tmp_path / "outside"
    (outside / "x").mkdir(parents=True)
    (outside / "x" / "attributes.json").write_text("{}")
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "attributes.json").write_text('{"n5": "2.0.0"}')
    (root / "a" / "out").symlink_to(outside / "x")

    async def main() -> list[Any]:
        async with open_store(str(root)) as store:
            assert isinstance(store, LocalStore)
            listed = await store.list_many(["", "a"])
            scope = store._scope
            assert scope.inside("a/b") and scope.real_of("a/b") == str(root / "a" / "b")
            assert scope.real_of("a/out") is None  # a link: resolved when asked, not remembered
            return [listed, await store.get_many(["a/b/attributes.json", "a/out/attributes.json"])]

    listed, (inside, through_link) = anyio.run(main)
    assert listed[1] == (["b", "out"], [])
    assert inside == b'{"n5": "2.0.0"}'
    assert isinstance(through_link, StoreError) and "not followed" in str(through_link)


def test_a_listing_remembers_its_subdirectories_after_the_parent_was_forgotten(
    tmp_path: Path,
) -> None:
    """What a listing knows of its directory's real path answers for its subdirectories: a
    parent forgotten by a full cache (a wide walk lists more directories than it holds) does
    not make them cost an ``lstat`` each again, nor lets a link among them in."""
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "out").symlink_to(outside)

    async def main() -> Scope:
        async with open_store(str(root)) as store:
            assert isinstance(store, LocalStore)
            await store.list_many([""])
            scope = store._scope
            scope._inside.pop("a")  # forgotten, as a full cache forgets its oldest entries
            await store.list_many(["a"])
            return scope

    scope = anyio.run(main)
    assert scope._inside.get("a/b") is True
    assert "a/out" not in scope._inside  # a link: resolved when asked
    assert scope.inside("a/out") is False
