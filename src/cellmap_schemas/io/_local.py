"""Local-disk backend: plain ``os`` calls, in batches.

A thread hop costs more than reading a small metadata file from the page cache (batching many
paths per call measured 7x faster than one call per file), so ``get_many`` reads a batch of
paths per call. Every path of a batch gets its own result: a failure (an I/O error while
listing, a name that cannot be resolved) costs that path only, never its batch. Where the calls
run is :class:`Pace`'s choice: on the event loop's thread while the page cache answers (a
batch of cached reads takes a few milliseconds; the store's timeout does not apply to them),
on worker threads while reads wait on a disk or a network filesystem.

Directory listings refuse to re-enter a directory they are already inside (symlink loops).
Symlinks whose target lies outside the store's root are listed but not followed (reading or
listing through one is a :class:`~cellmap_schemas.errors.NotFollowedError` naming the link
and its target) unless the store was opened with ``follow_symlinks=True``; even then a link into
a pseudo filesystem (``/proc``, ``/sys``, ``/dev``) is not followed, so a scan cannot wander
into the process table. Special files (FIFOs, sockets, devices) are listed as files but never
opened: reading one is an error, so a listing or read cannot hang. A file larger than the
store's ``max_document_size`` is an error, told from its size or, for files whose size lies
(``/proc``, growing files), after reading one byte past the limit.
"""

from __future__ import annotations

import functools
import itertools
import os
import stat
import time
from collections.abc import Iterable
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from cellmap_schemas.errors import NotFollowedError, StoreError
from cellmap_schemas.io._base import DEFAULT_MAX_DOCUMENT_SIZE, Store, too_large
from cellmap_schemas.io._errors import translate
from cellmap_schemas.io._pace import THREADS, Pace, under
from cellmap_schemas.io.url import Location, join_key, redact

__all__ = ["LocalStore", "Scope"]

BATCH = 256
"""Most paths handed to one worker-thread call."""

MIN_BATCH = 32
"""Fewest paths worth a thread call of their own: smaller requests go in one call."""

PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")
"""Trees a symlink is never followed into (unless the root itself lies there)."""

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _timed(func: Any, items: list[Any]) -> tuple[Any, float]:
    """``func(items)``, with the CPU time of the thread it ran on for it."""
    cpu = time.thread_time()
    out = func(items)
    return out, time.thread_time() - cpu


def _trim(cache: dict[str, Any]) -> None:
    """Forget the oldest quarter of a full :class:`Scope` cache (dicts keep insertion order);
    the root's entry, which every lookup may end at, stays."""
    if len(cache) <= Scope.CACHE:
        return
    root = cache.get("")
    for key in list(itertools.islice(cache, Scope.CACHE // 4)):
        del cache[key]
    if root is not None:
        cache[""] = root


class Scope:
    """Where reads may lead: the root's real path and whether links out of it are followed.

    Which directories lie inside the root is remembered (a bounded cache, one ``lstat`` per
    directory met), so that a read costs no resolution of its own unless its file is a link.
    """

    __slots__ = ("_inside", "_real", "follow", "real_root", "root", "url")

    CACHE = 1 << 13
    """Directories remembered at most; when full, the quarter remembered longest ago is
    forgotten (a listing remembers its subdirectories before the walk reads them, so the
    newest entries are the ones about to be asked for). ~330 bytes an entry: 16,384 cost a
    scan of 20,000 roots 12 MiB over its three processes. A walk of the 2,000-root bench tree
    in one process lists more directories than 4,096 before it reads them: 6,700 of its
    13,500 directories cost an ``lstat`` again then, 800 at 8,192, none at 16,384."""

    def __init__(self, root: str, real_root: str, url: str, follow: bool) -> None:
        self.root = root
        self.real_root = real_root
        self.url = url
        self.follow = follow
        self._inside: dict[str, bool] = {"": True}
        self._real: dict[str, str] = {}
        """The real path of each directory key a listing resolved (links followed)."""

    @classmethod
    def of(cls, root: str, url: str, follow: bool) -> Scope:
        return cls(root, os.path.realpath(root), url.rstrip("/") or url, follow)

    def inside(self, directory: str) -> bool:
        """Whether the directory key ``directory`` (no leading "/") resolves inside the root."""
        known = self._inside.get(directory)
        if known is not None:
            return known
        segments = directory.split("/")
        i = len(segments) - 1  # the longest prefix already known
        while i > 0 and "/".join(segments[:i]) not in self._inside:
            i -= 1
        ok = self._inside["/".join(segments[:i])]
        _trim(self._inside)
        for j in range(i, len(segments)):
            key = "/".join(segments[: j + 1])
            if ok:
                candidate = os.path.join(self.root, key)
                ok = not os.path.islink(candidate) or under(
                    os.path.realpath(candidate), self.real_root
                )
            self._inside[key] = ok
        return ok

    def real_of(self, key: str) -> str | None:
        """The remembered real path of the directory key ``key`` (None: not resolved yet)."""
        return self._real.get(key)

    def remember_real(self, key: str, real: str) -> None:
        _trim(self._real)
        self._real[key] = real

    def remember_child(self, parent: str, name: str, real: str) -> None:
        """A directory a listing of ``parent`` met that is no link: it lies at ``real``, so
        inside the root exactly when ``real`` is (told from the path itself, not from what was
        remembered of the parent, which may have been forgotten since). A walk reads or lists
        a directory after listing its parent, so neither costs an ``lstat`` of its own."""
        key = f"{parent}/{name}" if parent else name
        self.remember_real(key, real)
        _trim(self._inside)
        self._inside[key] = under(real, self.real_root)

    def url_of(self, key: str) -> str:
        return join_key(self.url, key)

    def refusal(self, key: str, target: str) -> NotFollowedError | None:
        """Why the link at ``key`` (resolving to ``target``) is not followed, or None."""
        if under(target, self.real_root):
            return None
        if not self.follow:
            return NotFollowedError(
                f"{self.url_of(key)}: symlink to {target} outside the scanned root: "
                "not followed (use --follow-symlinks)"
            )
        if any(under(target, p) for p in PSEUDO_FILESYSTEMS):
            return NotFollowedError(
                f"{self.url_of(key)}: symlink to {target} on a pseudo filesystem: not followed"
            )
        return None

    def explain(self, key: str) -> NotFollowedError | None:
        """The first link on the way to ``key`` that may not be followed (the slow path)."""
        segments = [s for s in key.split("/") if s and s != "."]
        real = self.real_root
        for i, segment in enumerate(segments):
            candidate = os.path.join(real, segment)
            if not os.path.islink(candidate):
                real = candidate
                continue
            os.stat(candidate)  # resolvable at all (the kernel bounds the chain), or OSError
            real = os.path.realpath(candidate)
            refused = self.refusal("/".join(segments[: i + 1]), real)
            if refused is not None:
                return refused
        return None


class LocalStore(Store):
    """A directory on a local (or mounted) filesystem.

    ``follow_symlinks``: follow links whose target lies outside the root (off by default: such
    a link is reported, not followed). Links inside the root are always followed.
    """

    def __init__(self, location: Location, *, follow_symlinks: bool = False, **kw: Any) -> None:
        super().__init__(location, **kw)
        self._root = location.path
        self.follow_symlinks = follow_symlinks
        self._scope = Scope.of(location.path, self.url, follow_symlinks)
        self._pace = Pace.of(self._scope.real_root)

    def _path(self, key: str) -> str:
        return join_key(self._root, key)

    async def _run(self, func: Any, *args: Any) -> Any:
        if self._pace.inline:  # the page cache answers: no thread to hand the GIL to
            await anyio.lowlevel.checkpoint()
            return func(*args)
        # abandon_on_cancel: a read stuck on a dead network mount must not hang the caller.
        with anyio.fail_after(self.timeout):
            return await anyio.to_thread.run_sync(
                func, *args, limiter=self._pace.limiter, abandon_on_cancel=True
            )

    async def get(self, key: str) -> bytes | None:
        self.requests += 1
        url = self.url_of(key)
        try:
            result = await self._run(
                read_batch, [(self._path(key), url, key)], self.max_document_size, self._scope
            )
        except TimeoutError:
            raise StoreError(f"{url}: timed out after {self.timeout:g} s") from None
        if isinstance(result[0], StoreError):
            raise result[0]
        return result[0]  # type: ignore[no-any-return]

    async def get_many(self, keys: Iterable[str]) -> list[bytes | StoreError | None]:
        # a local file's URL is its path (``url_of``), joined once for both
        items = [(path, redact(path), k) for k in keys for path in (self._path(k),)]
        return await self._batched(
            functools.partial(read_batch, limit=self.max_document_size, scope=self._scope), items
        )

    async def list_many(
        self, keys: Iterable[str]
    ) -> list[tuple[list[str], list[str]] | StoreError]:
        items = [(k, self.url_of(k)) for k in keys]
        return await self._batched(functools.partial(scan_batch, scope=self._scope), items)

    async def _batched(self, func: Any, items: list[Any]) -> list[Any]:
        """``func`` over ``items`` in up to THREADS concurrent thread calls of up to BATCH."""
        if not items:
            return []
        self.requests += len(items)
        size = min(BATCH, max(MIN_BATCH, -(-len(items) // THREADS)))
        batches = [items[i : i + size] for i in range(0, len(items), size)]
        results: list[list[Any]] = [[] for _ in batches]

        async def run(i: int) -> None:
            try:
                results[i], cpu = await self._run(_timed, func, batches[i])
                self._pace.note(len(batches[i]), cpu)
            except TimeoutError:
                results[i] = [
                    StoreError(f"{item[1]}: timed out after {self.timeout:g} s")
                    for item in batches[i]
                ]

        if len(batches) == 1:
            await run(0)
        else:
            async with anyio.create_task_group() as tg:
                for i in range(len(batches)):
                    tg.start_soon(run, i)
        return [r for batch in results for r in batch]

    async def list_dir(self, key: str = "") -> tuple[list[str], list[str]]:
        self.requests += 1
        url = self.url_of(key)
        try:
            result = await self._run(scan_batch, [(key, url)], self._scope)
        except TimeoutError:
            raise StoreError(f"{url}: timed out after {self.timeout:g} s") from None
        if isinstance(result[0], StoreError):
            raise result[0]
        return result[0]  # type: ignore[no-any-return]


def _kind(mode: int) -> str:
    return next((text for test, text in _KINDS if test(mode)), "not a regular file")


def read_file(
    path: str,
    url: str,
    limit: int = DEFAULT_MAX_DOCUMENT_SIZE,
    scope: Scope | None = None,
    key: str = "",
) -> bytes | None:
    """The bytes of a regular file; ``None`` when absent or a directory.

    A special file is refused from its ``stat``, before any ``open`` (opening a device can have
    effects; a FIFO is opened non-blocking all the same, should it replace the file meanwhile).
    With a ``scope`` that does not follow links out of the root, a file whose real path lies
    outside is refused. Raises a StoreError for a file of more than ``limit`` bytes, reading at
    most one past it.
    """
    try:
        st = os.lstat(path)
        linked = stat.S_ISLNK(st.st_mode)
        if linked:
            st = os.stat(path)
    except OSError as exc:
        _missing_or_raise(exc, url)
        return None
    if stat.S_ISDIR(st.st_mode):
        return None
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{url}: not a regular file ({_kind(st.st_mode)})")
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        _missing_or_raise(exc, url)
        return None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return None
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"{url}: not a regular file ({_kind(st.st_mode)})")
        if scope is not None and not scope.follow:
            _check_inside(path, url, scope, key, linked)
        if st.st_size > limit:
            raise too_large(url, limit)
        want = st.st_size + 1
        data = os.read(fd, want)
        if len(data) < want:  # the common case: all of it in one call
            return data
        parts = [data]
        total = len(data)
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            parts.append(chunk)
            total += len(chunk)
            if total > limit:
                raise too_large(url, limit)
        return b"".join(parts)
    except StoreError:  # an OSError too: not to be worded again below
        raise
    except OSError as exc:
        _missing_or_raise(exc, url)  # EISDIR: a directory after all
        return None
    finally:
        os.close(fd)


def _check_inside(path: str, url: str, scope: Scope, key: str, linked: bool) -> None:
    """Refuse a file that lies outside the root: its directory is checked (remembered), and
    the file itself only when it is a link."""
    directory = key.rpartition("/")[0].strip("/")
    if scope.inside(directory) and (not linked or under(os.path.realpath(path), scope.real_root)):
        return
    refused = scope.explain(key)
    if refused is None:
        refused = NotFollowedError(
            f"{url}: resolves to {os.path.realpath(path)} outside the scanned root: "
            "not followed (use --follow-symlinks)"
        )
    raise refused


def read_batch(
    items: list[tuple[str, str, str]],
    limit: int = DEFAULT_MAX_DOCUMENT_SIZE,
    scope: Scope | None = None,
) -> list[bytes | StoreError | None]:
    """:func:`read_file` over many ``(path, url, key)`` in one thread call; errors in place.

    Any exception is caught per path: one path that fails in an unforeseen way (a name that
    cannot be encoded, a resolution that recurses) must not cost the others.
    """
    out: list[bytes | StoreError | None] = []
    for path, url, key in items:
        try:
            out.append(read_file(path, url, limit, scope, key))
        except StoreError as exc:
            out.append(exc)
        except Exception as exc:
            out.append(_failure(exc, url))
    return out


def scan_batch(
    items: list[tuple[str, str]], scope: Scope
) -> list[tuple[list[str], list[str]] | StoreError]:
    """:func:`scan_dir` over many ``(key, url)`` in one thread call; errors in place, per key."""
    out: list[tuple[list[str], list[str]] | StoreError] = []
    for key, url in items:
        try:
            out.append(scan_dir(scope, key, url))
        except StoreError as exc:
            out.append(exc)
        except Exception as exc:
            error = _failure(exc, url)
            out.append(([], []) if error is None else error)
    return out


def _resolve(scope: Scope, key: str, url: str) -> tuple[str, set[str]] | None:
    """The real path of the directory ``key`` and of every directory on the way (its
    ancestors, real or as reached through the key); None if it does not exist."""
    real = scope.real_root
    ancestors = {real}
    segments = [s for s in key.split("/") if s and s != "."]
    for i, segment in enumerate(segments):
        prefix = "/".join(segments[: i + 1])
        known = scope.real_of(prefix)  # a walk lists a directory's parent first: one lstat each
        if known is not None:
            real = known
            ancestors.add(real)
            continue
        candidate = os.path.join(real, segment)
        if os.path.islink(candidate):
            try:
                os.stat(candidate)  # the kernel bounds a chain of links; realpath does not
            except OSError as exc:
                _missing_or_raise(exc, url)
                return None
            target = os.path.realpath(candidate)
            refused = scope.refusal(prefix, target)
            if refused is not None:
                raise refused
            real = target
        else:
            real = candidate
        scope.remember_real(prefix, real)
        ancestors.add(real)
    return real, ancestors


def scan_dir(scope: Scope, key: str, url: str) -> tuple[list[str], list[str]]:
    """One level of the directory ``key``: (directory names, other names), sorted.

    Directories (real or through symlinks) whose real path is the listed directory or one of
    its ancestors are left out: following them would loop. Broken symlinks and links that do
    not resolve (loops, chains too long) are left out too. Files are every other entry,
    special files included, so that a FIFO named like a metadata document is read (and
    refused) rather than silently missed. An error while reading the directory is this
    directory's StoreError.
    """
    resolved = _resolve(scope, key, url)
    if resolved is None:
        return [], []
    real, ancestors = resolved
    parent = "/".join(s for s in key.split("/") if s and s != ".")
    try:
        it = os.scandir(real)
    except OSError as exc:
        _missing_or_raise(exc, url)
        return [], []
    dirs: list[str] = []
    files: list[str] = []
    with it:
        while True:
            try:
                entry = next(it)
            except StopIteration:
                break
            except OSError as exc:  # the directory failed after it opened (EIO, EPERM)
                _missing_or_raise(exc, url)
                break  # it vanished meanwhile: what was read is the listing
            try:
                if entry.is_symlink():
                    mode = os.stat(entry.path).st_mode  # bounded; OSError for loops
                    if stat.S_ISDIR(mode):
                        if not _loops(os.path.realpath(entry.path), real, ancestors):
                            dirs.append(entry.name)
                    else:
                        files.append(entry.name)
                elif entry.is_dir(follow_symlinks=False):
                    if entry.path not in ancestors:
                        dirs.append(entry.name)
                        scope.remember_child(parent, entry.name, entry.path)
                else:
                    files.append(entry.name)
            except OSError:  # vanished meanwhile, or a symlink that does not resolve: skip
                continue
    dirs.sort()
    files.sort()
    return dirs, files


def _loops(target: str, real: str, ancestors: set[str]) -> bool:
    return target in ancestors or real.startswith(target.rstrip("/") + "/")


def _missing_or_raise(exc: BaseException, url: str) -> None:
    """``None`` when the table's ``local`` rows call ``exc`` a missing path; else its
    StoreError ("access denied (...)", "too many levels of symbolic links", the OS's words)."""
    translate(exc, url, "local")


def _failure(exc: BaseException, url: str) -> StoreError | None:
    """The table's outcome for ``exc`` as a value: None (missing) or the StoreError, in place."""
    try:
        translate(exc, url, "local")
    except StoreError as error:
        return error
    return None
