"""Turntable videos: MP4 through imageio's ffmpeg plugin, GIF when ffmpeg is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreamer.io import atomic_save


def ffmpeg_available() -> bool:
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
        return True
    except Exception:  # noqa: BLE001 - any failure means no usable ffmpeg
        return False


def write_video(frames: np.ndarray, folder: Path | str, stem: str = "turntable", fps: int = 20,
                prefer_mp4: bool = True) -> Path:
    """frames [N, H, W, 3] uint8 -> turntable.mp4 (or turntable.gif without ffmpeg)."""
    import imageio.v2 as imageio

    folder = Path(folder)
    if prefer_mp4 and ffmpeg_available():
        path = folder / f"{stem}.mp4"

        def writer(tmp: Path) -> None:
            # yuv420p + even sizes: plays in browsers and QuickTime.
            with imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", quality=7,
                                    pixelformat="yuv420p", macro_block_size=2) as w:
                for frame in frames:
                    w.append_data(frame)
    else:
        path = folder / f"{stem}.gif"

        def writer(tmp: Path) -> None:
            imageio.mimsave(tmp, list(frames), format="GIF", duration=1.0 / fps, loop=0)

    atomic_save(path, writer)
    return path
