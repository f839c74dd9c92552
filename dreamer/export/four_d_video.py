"""Videos of a 4D representation: the motion from a fixed front camera, and a turntable that plays it.

Both render through `representation.render(camera.with_time(...), background=white)`, so anything
that honours `Camera.time` works (a static representation gives a still motion video). Frame k of
an N-frame video is at time k / N (times loop, so the video loops seamlessly); the turntable's
camera k sits at azimuth 360·k/N while the motion runs `loops` times round. The two videos have their
own frame counts: `motion_video_frames` (motion.mp4, one loop) and `turntable_frames` (turntable.mp4,
one turn: `export.video_frames`); dreamer.trainer.four_d_outputs chooses them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dreamer.cameras import Camera, from_spherical, turntable
from dreamer.errors import UserError

DISTANCE, FOVY = 2.8, 42.5  # the static turntable's camera (dreamer.cameras.turntable)


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return value


@torch.no_grad()
def render_cameras(representation, cameras: Camera, device: torch.device, chunk: int = 4) -> np.ndarray:
    """[N, H, W, 3] uint8 renders over white, `chunk` cameras at a time."""
    from dreamer.export.images import to_uint8

    white = torch.ones(3, device=device)
    out = []
    for i in range(0, len(cameras), chunk):
        rendered = representation.render(cameras[i:i + chunk].to(device), background=white)
        out.append(to_uint8(rendered.rgb.float()))
    return np.concatenate(out)


def motion_cameras(motion_video_frames: int, resolution: int, elevation: float = 20.0) -> Camera:
    """`motion_video_frames` front cameras (azimuth 0) at times k / motion_video_frames."""
    n = _check_count("motion video frames", motion_video_frames)
    cams = from_spherical(torch.zeros(n), elevation, DISTANCE, FOVY, resolution)
    return cams.with_time(torch.arange(n, dtype=torch.float32) / n)


def turntable_motion_cameras(turntable_frames: int, resolution: int, loops: int = 1,
                             elevation: float = 20.0) -> Camera:
    """One orbit of `turntable_frames` cameras; camera k at time (loops·k / turntable_frames) mod 1."""
    n = _check_count("turntable frames", turntable_frames)
    _check_count("motion loops per turn", loops)
    cams = turntable(n, resolution, elevation=elevation, distance=DISTANCE, fovy=FOVY)
    return cams.with_time(loops * torch.arange(n, dtype=torch.float32) / n)


def motion_frames(representation, motion_video_frames: int, resolution: int, device: torch.device,
                  elevation: float = 20.0) -> np.ndarray:
    """The motion seen from the front: [N, H, W, 3] uint8 (N = `motion_video_frames`), frame k at time k / N."""
    return render_cameras(representation, motion_cameras(motion_video_frames, resolution, elevation), device)


def turntable_motion_frames(representation, turntable_frames: int, resolution: int, device: torch.device,
                            loops: int = 1, elevation: float = 20.0) -> np.ndarray:
    """The camera orbits once while the motion plays `loops` times: [turntable_frames, H, W, 3] uint8."""
    cameras = turntable_motion_cameras(turntable_frames, resolution, loops, elevation)
    return render_cameras(representation, cameras, device)


def write_motion_videos(representation, folder: Path | str, device: torch.device, motion_video_frames: int,
                        turntable_frames: int, resolution: int, fps: int, loops: int = 1) -> dict[str, Path]:
    """motion.mp4 (`motion_video_frames`) and turntable.mp4 (`turntable_frames`), GIFs without ffmpeg, in
    `folder`, both at `fps`; returns {"motion_video", "video"}."""
    from dreamer.export.video import write_video

    motion = motion_frames(representation, motion_video_frames, resolution, device)
    orbit = turntable_motion_frames(representation, turntable_frames, resolution, device, loops)
    return {"motion_video": write_video(motion, folder, stem="motion", fps=fps),
            "video": write_video(orbit, folder, stem="turntable", fps=fps)}


def loops_per_turn(turn_seconds: float, loop_seconds: float) -> int:
    """Whole motion loops that best fill one turn (at least one), so the turntable video loops too."""
    return max(1, round(turn_seconds / loop_seconds))
