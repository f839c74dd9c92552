"""A small real file system for disk-full tests: a tmpfs that can be filled up and freed again."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

MOUNT_MB = 64


def mount_tmpfs(folder: Path) -> bool:
    """Mount a MOUNT_MB tmpfs on `folder`; False where this machine does not allow it (not root)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={MOUNT_MB}m", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


class SmallDisk:
    """A folder whose file system can be filled up and freed again: a tmpfs when mounting is allowed,
    else a plain folder whose dreamer writes fail with ENOSPC while it is "full" (injected)."""

    def __init__(self, root: Path, real: bool, monkeypatch):
        self.root, self.real, self._monkeypatch = root, real, monkeypatch
        self._filler = root / "filler.bin"

    def fill(self) -> None:
        if self.real:  # write until the device refuses, in ever smaller blocks
            fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                for size in (1 << 20, 1 << 14, 1 << 10, 1):
                    try:
                        while True:
                            os.write(fd, b"\0" * size)
                    except OSError as e:
                        assert e.errno == errno.ENOSPC
            finally:
                os.close(fd)
            assert shutil.disk_usage(self.root).free < (1 << 14)
        else:
            real_mkstemp = __import__("tempfile").mkstemp

            def full_mkstemp(*args, dir=None, **kwargs):
                if dir is not None and Path(dir).resolve().is_relative_to(self.root.resolve()):
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real_mkstemp(*args, dir=dir, **kwargs)

            self._monkeypatch.setattr("dreamer.io.tempfile.mkstemp", full_mkstemp)

    def free(self) -> None:
        if self.real:
            self._filler.unlink(missing_ok=True)
        else:
            self._monkeypatch.undo()
