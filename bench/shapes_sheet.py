"""Contact sheet of the shape library: one row per object, columns = views around it.

    python bench/shapes_sheet.py [--out docs/shapes.png] [--size 128]

Rows cycle through the named colours so both shape and colour handling are visible; the
columns are front (azimuth 0), front-right, right, back, left and an overhead view.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sheet import labelled_row, write_sheet  # noqa: E402

from dreamer.cameras import from_spherical  # noqa: E402
from dreamer.shapes import COLOURS, OBJECTS, ObjectSpec, render_spec  # noqa: E402

VIEWS = [(0.0, 15.0), (45.0, 15.0), (90.0, 15.0), (180.0, 15.0), (270.0, 15.0), (30.0, 70.0)]
LABEL_WIDTH = 150


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "shapes.png"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--supersample", type=int, default=2)
    args = parser.parse_args()

    az = torch.tensor([v[0] for v in VIEWS])
    el = torch.tensor([v[1] for v in VIEWS])
    camera = from_spherical(az, el, 2.8, 42.5, args.size)
    colours = [c for c in COLOURS if c != "white"]
    rows = []
    start = time.perf_counter()
    for i, name in enumerate(OBJECTS):
        spec = ObjectSpec(name, colours[i % len(colours)])
        rgb = render_spec(spec, camera, supersample=args.supersample).rgb  # [V, H, W, 3]
        rows.append(labelled_row(spec.prompt, rgb, LABEL_WIDTH))
    elapsed = time.perf_counter() - start
    out = write_sheet(rows, args.out)
    print(f"wrote {out} ({len(OBJECTS)} objects x {len(VIEWS)} views at {args.size}px, "
          f"supersample {args.supersample}: {elapsed:.2f} s)")


if __name__ == "__main__":
    main()
