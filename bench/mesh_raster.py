"""CPU mesh rasterizer: forward and forward + backward time against image size and triangle count.

    python bench/mesh_raster.py                 # print only
    python bench/mesh_raster.py --quick         # 3 repetitions, for development
    python bench/mesh_raster.py --write         # also write its section of docs/benchmarks.md

Scene: an icosphere of radius 0.6 at the origin (trimesh subdivisions 3 / 4 / 5: 1,280 / 5,120 /
20,480 triangles) with random per-vertex colours, one camera at distance 2.8 (azimuth 30°,
elevation 20°, fovy 42.5°). "Forward" is `rasterize` + `interpolate` of the colours; "forward +
backward" adds the backward pass of a loss with random weights on the colours and the depth (to
the vertex positions and the colours). Each timing is the median wall time of `--repeats` runs
after warm-up, with `--threads` torch threads. A second table times the whole `mesh`
representation (DMTet) per training render at 64 px: marching tetrahedra on the grid, rasterize,
colour field, diffuse shading, outline antialiasing, and the backward pass to the SDF, the offsets
and the colour field.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import markdown_table, write_section  # noqa: E402

from dreamer.cameras import from_spherical  # noqa: E402
from dreamer.render.mesh import interpolate, rasterize  # noqa: E402

SUBDIVISIONS = {1280: 3, 5120: 4, 20480: 5}  # icosphere triangles → trimesh subdivisions


def scene(n_faces: int, size: int, seed: int = 0):
    mesh = trimesh.creation.icosphere(subdivisions=SUBDIVISIONS[n_faces], radius=0.6)
    g = torch.Generator().manual_seed(seed)
    vertices = torch.tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.tensor(mesh.faces, dtype=torch.long)
    colours = torch.rand(len(vertices), 3, generator=g)
    camera = from_spherical(30.0, 20.0, 2.8, 42.5, size, size)
    weights = (torch.randn(1, size, size, 3, generator=g), torch.randn(1, size, size, 1, generator=g))
    return vertices, faces, colours, camera, weights


def run(vertices, faces, colours, camera, weights, backward: bool):
    v = vertices.clone().requires_grad_(backward)
    c = colours.clone().requires_grad_(backward)
    with torch.set_grad_enabled(backward):
        frags = rasterize(v, faces, camera)
        rgb = interpolate(c, faces, frags)
        if backward:
            ((rgb * weights[0]).sum() + (frags.depth * weights[1]).sum()).backward()
    return frags


def median_ms(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per measurement (median)")
    ap.add_argument("--quick", action="store_true", help="3 repeats, for development")
    ap.add_argument("--write", action="store_true", help="also write the section of docs/benchmarks.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else args.repeats

    rows, timed = [], {}
    for size in (64, 128, 256):
        for n_faces in SUBDIVISIONS:
            data = scene(n_faces, size)
            covered = int(run(*data, backward=False).mask.sum())
            fwd = median_ms(lambda: run(*data, backward=False), repeats)
            both = median_ms(lambda: run(*data, backward=True), repeats)
            timed[(size, n_faces)] = (fwd, both)
            rows.append([f"{size}×{size}", n_faces, covered, f"{fwd:.1f}", f"{both:.1f}"])
            print(rows[-1], flush=True)

    dmtet_rows = []
    for grid in (32, 48, 64):
        from dreamer.representations.mesh import MeshConfig, MeshRepresentation

        mesh = MeshRepresentation(MeshConfig(grid_resolution=grid))
        camera = from_spherical(30.0, 20.0, 2.8, 42.5, 64, 64)

        def step():
            out = mesh.render(camera)
            out.rgb.mean().backward()
            mesh.zero_grad()

        vertices, faces, _ = mesh.surface()
        dmtet_rows.append([f"{grid}³ ({len(mesh.tets):,} tetrahedra)", len(faces), f"{median_ms(step, repeats):.1f}"])
        print(dmtet_rows[-1], flush=True)

    summary = markdown_table(
        ["", "measured (ms)", "design target (ms)", "met"],
        [["forward, 64×64, 5,120 triangles", f"{timed[(64, 5120)][0]:.1f}", "≤ 30", timed[(64, 5120)][0] <= 30],
         ["forward, 128×128, 20,480 triangles", f"{timed[(128, 20480)][0]:.1f}", "≈ 100",
          timed[(128, 20480)][0] <= 100]])
    scaling = markdown_table(["image", "triangles", "covered pixels", "forward (ms)", "forward + backward (ms)"],
                             rows)
    body = (f"{summary}\n\nMedian of {repeats} runs, torch threads: {args.threads}; forward = rasterize + "
            f"interpolate of vertex colours, backward to vertex positions and colours:\n\n{scaling}\n\n"
            "The `mesh` representation (DMTet, a sphere of radius 0.5), one 64×64 training render, "
            "forward + backward:\n\n"
            + markdown_table(["tetrahedral grid", "surface triangles", "ms"], dmtet_rows) + "\n")
    print(body)
    if args.write:
        path = write_section("mesh-raster", "CPU mesh rasterizer", body,
                             "python bench/mesh_raster.py " + " ".join(sys.argv[1:]))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
