"""How long a mesh export takes, stage by stage, and how big its files are.

    python bench/export.py              # prints the table and writes the "export" section of docs/benchmarks.md
    python bench/export.py --no-write   # prints only
    python bench/export.py --objects mug house --resolutions 128 256

For each shape-library object and marching-cubes grid (a NeRF-like mesh: `spec_mesh`, coloured by
the object's analytic colour field as a NeRF's `colour_at` would be), it runs the export pipeline
at the default caps (50k faces, 1024² texture) writing glb + obj + ply, and reports seconds per
stage (decimate, colour the vertices, xatlas unwrap, bake, write), the file sizes and the Khronos
glTF validator's error count for model.glb ("-" when the validator is not installed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import markdown_table, write_section  # noqa: E402

from dreamer.export.options import MeshExportOptions  # noqa: E402
from dreamer.export.pipeline import export_mesh  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the glTF validator lives on the tests side
from gltf_validator import validate_gltf, validator_problem  # noqa: E402
from dreamer.shapes import ObjectSpec, sdf_and_colour, spec_mesh  # noqa: E402

STAGES = ("decimate", "colour", "unwrap", "bake", "write")


def colour_fn(spec: ObjectSpec):
    def fn(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return sdf_and_colour(spec, torch.as_tensor(points, dtype=torch.float32))[1].numpy()
    return fn


def kib(paths) -> str:
    return f"{sum(p.stat().st_size for p in paths) / 1024:.0f}"


def bench_one(spec: ObjectSpec, resolution: int, options: MeshExportOptions, folder: Path) -> list:
    mesh = spec_mesh(spec, resolution)
    result = export_mesh(mesh, colour_fn(spec), folder, options)
    p = result.paths
    errors = "-" if validator_problem() else validate_gltf(p["glb"]).errors
    s = result.seconds
    return [spec.shape, f"{resolution}³", result.faces_in, result.faces, result.charts or "-",
            *(f"{s.get(stage, 0.0):.2f}" for stage in STAGES), f"{sum(s.values()):.1f}",
            kib([p["glb"]]), kib([p["obj"], p["mtl"], p["texture"]]) if "mtl" in p else kib([p["obj"]]),
            kib([p["ply"]]), errors]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", nargs="+", default=["mug", "house"], help="shape-library objects")
    ap.add_argument("--colour", default="red", help="their colour name")
    ap.add_argument("--resolutions", nargs="+", type=int, default=[128, 256], help="marching-cubes grid sides")
    ap.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = ap.parse_args()

    options = MeshExportOptions(formats=["glb", "obj", "ply"])  # default caps
    work = Path(tempfile.mkdtemp(prefix="dreamer-export-bench-"))
    rows = []
    try:
        for name in args.objects:
            for res in args.resolutions:
                rows.append(bench_one(ObjectSpec(name, args.colour), res, options, work / f"{name}-{res}"))
                print(f"done: {name} {res}³", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    headers = ["object", "grid", "faces in", "faces out", "charts", *(f"{s} (s)" for s in STAGES), "total (s)",
               "glb (KiB)", "obj+mtl+png (KiB)", "ply (KiB)", "glTF errors"]
    table = markdown_table(headers, rows)
    print(table)
    if not args.no_write:
        body = (f"Mesh export at the default caps ({options.max_faces} faces, {options.texture_size}² texture, "
                f"{options.padding} texels of seam padding): marching cubes of shape-library objects, coloured "
                "by their analytic colour field, written as glb + obj/mtl/png + ply. `colour` is the vertex "
                "colours of the decimated mesh; `bake` includes the texel colour queries and seam padding; "
                "glTF errors are the Khronos validator's.\n\n" + table)
        command = "python bench/export.py " + " ".join(sys.argv[1:])
        write_section("export", "Export: time per stage and file sizes", body, command.strip())


if __name__ == "__main__":
    main()
