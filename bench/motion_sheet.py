"""Contact sheet of the animated shape library: one row per motion, columns = frames of its loop.

    python bench/motion_sheet.py [--out docs/motions.png] [--frames 8] [--size 112]

Every row is seen from one fixed camera (front-right, slightly above) so that the motion, not the
camera, changes along the row.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sheet import labelled_row, write_sheet  # noqa: E402

from dreamer.cameras import clip_cameras, frame_times, from_spherical  # noqa: E402
from dreamer.shapes import ObjectSpec  # noqa: E402
from dreamer.shapes.animated import render_motion  # noqa: E402
from dreamer.shapes.motions import MOTIONS, MotionSpec  # noqa: E402

ROWS = [("spinning", "chair", "blue"), ("bouncing", "cube", "red"), ("sliding", "cylinder", "green"),
        ("swaying", "tree", "green"), ("pulsing", "sphere", "purple"), ("orbiting", "mug", "orange")]
LABEL_WIDTH = 170


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "motions.png"))
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--supersample", type=int, default=2)
    args = parser.parse_args()
    assert {r[0] for r in ROWS} == set(MOTIONS), "one row per motion"

    camera = from_spherical(30.0, 15.0, 3.2, 42.5, args.size)
    cams = clip_cameras(camera, frame_times(args.frames))
    rows = []
    start = time.perf_counter()
    header = Image.new("RGB", (LABEL_WIDTH + args.frames * args.size, 18), "white")
    for k in range(args.frames):
        ImageDraw.Draw(header).text((LABEL_WIDTH + k * args.size + 4, 3), f"t = {k}/{args.frames}", fill="black")
    rows.append(np.asarray(header))
    for motion, shape, colour in ROWS:
        spec = MotionSpec(ObjectSpec(shape, colour), motion)
        rgb = render_motion(spec, cams, supersample=args.supersample).rgb  # [F, H, W, 3]
        rows.append(labelled_row(spec.prompt, rgb, LABEL_WIDTH))
    elapsed = time.perf_counter() - start
    out = write_sheet(rows, args.out)
    print(f"wrote {out} ({len(ROWS)} motions x {args.frames} frames at {args.size}px, "
          f"supersample {args.supersample}: {elapsed:.2f} s)")


if __name__ == "__main__":
    main()
