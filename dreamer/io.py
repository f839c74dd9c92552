"""Atomic file writes: write to a temporary file in the same folder, then rename over the target.

Every file dreamer writes goes through `atomic_path`, so a failed write never leaves a half-written
file where a good one was. A write that fails because the disk is full becomes one `DiskFull` error
that names the folder, whatever library did the writing (torch's serializer reports it as
"RuntimeError: [enforce fail at inline_container.cc] . unexpected pos …", without an errno).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from dreamer.errors import DiskFull

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
NEARLY_FULL_BYTES = 1 << 20  # a writer's own error (no errno) counts as "disk full" when less than this is free


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _is_disk_full(error: BaseException, folder: Path) -> bool:
    """Whether `error`, raised while writing into `folder`, came from a full disk: an OSError with
    ENOSPC / EDQUOT anywhere in its chain, or another writer error while the folder's file system has
    (nearly) nothing left."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in FULL_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, (OSError, RuntimeError)):
        free = _free_bytes(folder)
        return free is not None and free < NEARLY_FULL_BYTES
    return False


def disk_full_error(path: Path) -> DiskFull:
    free = _free_bytes(path.parent)
    left = f"{free / 2**20:.1f} MB free" if free is not None else "free space unknown"
    return DiskFull(f"no space left on the device of {path.parent} ({left}) while writing {path.name}: "
                    "free some space, then run again with --resume (the last checkpoint is intact)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp-", suffix=path.suffix)  # keep the suffix: writers pick the format by it
    except OSError as error:
        if error.errno in FULL_ERRNOS:
            raise disk_full_error(path) from error
        raise
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs follow the umask
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as error:
        tmp_path.unlink(missing_ok=True)  # first, so that the space check sees what the partial file held
        if _is_disk_full(error, path.parent):
            raise disk_full_error(path) from error
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def append_text(path: Path | str, text: str) -> None:
    """Append `text` to a log such as metrics.jsonl (not atomic: its readers skip a line cut short);
    a full disk raises DiskFull, like every other write of a run."""
    path = Path(path)
    try:
        with open(path, "a") as f:
            f.write(text)
            f.flush()
    except OSError as error:
        if _is_disk_full(error, path.parent):
            raise disk_full_error(path) from None
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_save(path: Path | str, writer: Callable[[Path], None]) -> None:
    """Run `writer(tmp_path)` and move the result into place."""
    with atomic_path(path) as tmp:
        writer(tmp)
