"""Records sorted by a key in bounded memory: an external merge sort over a temporary file.

A report whose document sorts its nodes (``--format json``) cannot write a node before the scan
ends, nor keep every node (about 340 bytes encoded each, plus the Python objects holding them:
some 60 MB at 120,000 nodes). :class:`Spool` keeps up to ``budget`` bytes of records in memory;
past that it sorts them and appends them to an anonymous temporary file as one run, and
:meth:`Spool.drain` merges the runs back. The order is that of a stable sort of every record by
key: within a run by ``list.sort``, across runs by ``heapq.merge``, which prefers earlier runs
on equal keys.
"""

from __future__ import annotations

import heapq
import os
import struct
import tempfile
from collections.abc import Iterator
from typing import IO

__all__ = ["Spool"]

_HEAD = struct.Struct("<II")
"""A spooled record: the key's and the payload's lengths, then both."""

_OVERHEAD = 160
"""Bytes an in-memory record costs beyond its key and payload (tuple, str, bytes headers)."""

BUDGET = 4 << 20
"""Bytes of records kept in memory before they are written out as a sorted run."""

READ_BUFFER = 64 << 10
"""Bytes read at a time from each run while merging (less when there are many runs)."""


class Spool:
    """Collects ``(key, payload)`` records; :meth:`drain` gives the payloads sorted by key.

    ``budget``: bytes kept in memory (``None``: :data:`BUDGET`). ``directory``: where the
    temporary file goes (``None``: the system's temporary directory); the file has no name on
    POSIX and is removed when the spool is drained, closed or dropped.
    """

    def __init__(self, *, budget: int | None = None, directory: str | None = None) -> None:
        self._budget = BUDGET if budget is None else budget
        self._directory = directory
        self._run: list[tuple[str, bytes]] = []
        self._size = 0
        self._file: IO[bytes] | None = None
        self._runs: list[tuple[int, int]] = []
        """Each run's start and end offset in the file."""

    def add(self, key: str, payload: bytes) -> None:
        self._run.append((key, payload))
        self._size += len(key) + len(payload) + _OVERHEAD
        if self._size >= self._budget:
            self._spill()

    def _spill(self) -> None:
        """Write the records in memory out as one sorted run."""
        if not self._run:
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115 (closed by close)
        self._run.sort(key=_key)
        f = self._file
        start = f.seek(0, os.SEEK_END)
        parts: list[bytes] = []
        for key, payload in self._run:
            raw = key.encode("utf-8", "surrogatepass")
            parts += (_HEAD.pack(len(raw), len(payload)), raw, payload)
        f.write(b"".join(parts))
        self._runs.append((start, f.tell()))
        self._run = []
        self._size = 0

    def drain(self) -> Iterator[bytes]:
        """Every payload, sorted by key (stable); the spool is empty afterwards."""
        try:
            if self._file is None:
                run, self._run = self._run, []
                run.sort(key=_key)
                for _, payload in run:
                    yield payload
                return
            self._spill()
            f = self._file
            f.flush()
            size = max(4096, min(READ_BUFFER, (self._budget * 2) // len(self._runs)))
            runs = [iter(_Run(f, start, end, size)) for start, end in self._runs]
            for _, payload in heapq.merge(*runs, key=_key):
                yield payload
        finally:
            self.close()

    def __del__(self) -> None:  # a scan that failed drops its writer without finishing it
        self.close()

    def close(self) -> None:
        """Drop every record and the temporary file."""
        self._run = []
        self._size = 0
        self._runs = []
        if self._file is not None:
            self._file.close()
            self._file = None


def _key(item: tuple[str, bytes]) -> str:
    return item[0]


class _Run:
    """The records of one run, read ``size`` bytes at a time (the runs share one file: each
    read seeks to where this run's previous read stopped)."""

    def __init__(self, f: IO[bytes], start: int, end: int, size: int) -> None:
        self._f = f
        self._pos = start
        self._end = end
        self._size = size

    def _more(self, rest: bytes, n: int) -> bytes:
        """``rest`` and the run's next bytes, at least ``n`` in all."""
        parts = [rest]
        have = len(rest)
        while have < n:
            want = min(max(self._size, n - have), self._end - self._pos)
            self._f.seek(self._pos)
            chunk = self._f.read(want) if want > 0 else b""
            if not chunk:
                raise OSError("the spooled report records are truncated")
            self._pos += len(chunk)
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        # one loop turn per record, slicing a buffer of many (a call per field cost a third
        # of the merge)
        head, unpack = _HEAD.size, _HEAD.unpack_from
        buf, at = b"", 0
        while self._pos < self._end or at < len(buf):
            if len(buf) - at < head:
                buf, at = self._more(buf[at:], head), 0
            klen, plen = unpack(buf, at)
            stop = at + head + klen + plen
            if stop > len(buf):
                buf, at = self._more(buf[at:], stop - at), 0
                stop = head + klen + plen
            key = buf[at + head : at + head + klen].decode("utf-8", "surrogatepass")
            yield key, buf[at + head + klen : stop]
            at = stop
