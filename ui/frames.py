"""A 4D run's per-frame splat PLYs (`frames/frame_000.ply …`) as one download, `frames.zip`.

A browser downloads files, not folders, so the page offers the folder zipped. The zip is written
into the run folder when the results are first shown (and again when the frames are newer than
it), through a temporary file and a rename, so a download never sees half a zip. Only plain files
directly in `frames/` go in: a symbolic link (which could point out of the runs folder) is left out.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

FRAMES_DIR = "frames"
FRAMES_ZIP = "frames.zip"


def frame_files(run_dir: Path) -> list[Path]:
    """The frame PLYs of `run_dir`, in frame order (plain files only; [] for a 3D run)."""
    folder = run_dir / FRAMES_DIR
    if folder.is_symlink() or not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("frame_*.ply") if p.is_file() and not p.is_symlink())


def frames_zip(run_dir: Path) -> Path | None:
    """`run_dir/frames.zip` holding the frame PLYs, written when missing or stale; None when the
    run has no frames or the folder cannot be written."""
    frames = frame_files(run_dir)
    if not frames:
        return None
    target = run_dir / FRAMES_ZIP
    try:
        if (target.is_file() and not target.is_symlink()
                and target.stat().st_mtime >= max(p.stat().st_mtime for p in frames)):
            return target
        handle, temporary = tempfile.mkstemp(prefix=".frames-", suffix=".zip.tmp", dir=run_dir)
        try:
            with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in frames:
                    archive.write(path, f"{FRAMES_DIR}/{path.name}")
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:  # a read-only or vanished folder: the frames are simply not offered
        return None
    return target
