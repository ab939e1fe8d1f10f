"""Where a local store's reads run: on the event loop's thread or on worker threads.

A store on a local filesystem (the type read from the mount table) reads on the loop's own
thread while the page cache answers, on worker threads while reads go to the device; any other
filesystem always reads on worker threads (:class:`Pace`).
"""

from __future__ import annotations

import anyio

__all__ = ["LOCAL_FILESYSTEMS", "THREADS", "Pace", "filesystem_of", "under"]

THREADS = 4
"""Worker threads one local store keeps busy at once while reads wait on a device."""


def under(path: str, base: str) -> bool:
    """Whether ``path`` is ``base`` or lies below it (both real, absolute paths)."""
    return path == base or path.startswith(base.rstrip("/") + "/")


LOCAL_FILESYSTEMS = frozenset({
    "btrfs", "bcachefs", "exfat", "ext2", "ext3", "ext4", "f2fs", "hfsplus", "iso9660", "jfs",
    "nilfs2", "ntfs", "ntfs3", "overlay", "ramfs", "reiserfs", "squashfs", "tmpfs", "udf", "vfat",
    "xfs", "zfs",
})  # fmt: skip
"""Filesystems on a local device or in memory: reads start on the event loop's thread
(anything else, NFS, SMB, Lustre, GPFS, FUSE mounts, or a platform without a mount table, on
:data:`THREADS` worker threads)."""


def _unescape(field: str) -> str:
    r"""A ``/proc/self/mountinfo`` path field: spaces and the like are written ``\040``."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def filesystem_of(path: str, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem ``path`` (a real path) lies on, from the mount table
    (``mountinfo``: the text of ``/proc/self/mountinfo``, read when not given); ``None`` when
    there is no table to read (not Linux) or no mount holds the path."""
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
                mountinfo = f.read()
        except OSError:
            return None
    best, fstype = -1, None
    for line in mountinfo.splitlines():
        fields, sep, rest = line.partition(" - ")
        parts = fields.split(" ")
        if not sep or len(parts) < 5 or not rest:
            continue
        point = _unescape(parts[4])
        if under(path, point) and len(point) > best:
            best, fstype = len(point), rest.split(" ", 1)[0]
    return fstype


class Pace:
    """Where a local store's reads run: on the event loop's own thread, or on worker threads.

    On a local filesystem, on the loop's thread while the page cache answers (:attr:`inline`):
    a worker thread only hands the GIL back and forth, each read's five system calls giving it
    up and waiting for it again while the verdicts hold it, so reads and verdicts never overlap
    anyway (a scan of the benchmark bucket: 1.14-1.26 s on one worker thread against
    1.03-1.10 s inline; four threads were slower still, 1.9 s against 1.4 s on one). On
    :data:`THREADS` worker threads once batches show reads going to the device (a cold cache:
    3.2-3.8 s on four threads against 4.7-5.1 s on one), and back when they come from the
    cache again. On any other filesystem (NFS, a FUSE mount) reads wait on the network: always
    :data:`THREADS` worker threads, each read bounded by the store's timeout.
    """

    __slots__ = ("_cpu", "limiter", "local")

    SLOW = 90e-6
    """Thread CPU time per path above which reads go to the device: a page-cache miss costs
    the reading thread the block layer's work too (measured on one thread: ~20 µs per path
    from the cache, ~120 µs from a cold disk). Wall time cannot tell: a thread waiting for the
    GIL looks like one waiting for the disk."""
    CACHED = 60e-6
    """Thread CPU time per path, on many threads, below which the cache answers again (~40 µs
    with the contention)."""
    SAMPLE = 16
    """Fewest paths a batch needs to count."""

    def __init__(self, local: bool) -> None:
        self.local = local
        self.limiter = anyio.CapacityLimiter(1 if local else THREADS)
        self._cpu = 0.0

    @classmethod
    def of(cls, real_root: str) -> Pace:
        """The pace for a store rooted at ``real_root``, from the filesystem it lies on."""
        return cls(filesystem_of(real_root) in LOCAL_FILESYSTEMS)

    @property
    def inline(self) -> bool:
        """Whether reads run on the calling thread (a local filesystem, the cache answering)."""
        return self.local and self.limiter.total_tokens == 1

    def note(self, items: int, cpu: float) -> None:
        """A batch of ``items`` paths cost its thread ``cpu`` seconds."""
        if not self.local or items < self.SAMPLE:
            return
        # averaged over a few batches, so that one slow directory does not switch
        self._cpu = 0.7 * self._cpu + 0.3 * cpu / items if self._cpu else cpu / items
        if self.limiter.total_tokens == 1:
            if self._cpu > self.SLOW:
                self.limiter.total_tokens = THREADS
        elif self._cpu < self.CACHED:
            self.limiter.total_tokens = 1
