"""CPU Gaussian-splat rasterizer: speed against the dense all-pairs reference, equality, scaling.

    python bench/splat_raster.py --no-write            # print only
    python bench/splat_raster.py                       # also write docs/benchmarks.md
    python bench/splat_raster.py --quick --no-write    # 3 repetitions, for development

Scene: N random Gaussians in a ball of radius 0.6 at the origin (scales log-uniform in
0.005–0.05, opacities uniform in 0.1–0.9, random rotations and colours), one camera at distance
2.8 (azimuth 30°, elevation 20°, fovy 42.5°). Each timing is the median wall time of `--repeats`
forward + backward passes (loss: random weights on rgb and alpha) after warm-up, with
`--threads` torch threads. "Equal" compares the images (max abs error on rgb and alpha) and the
cosine similarity of the gradients on means, quats, scales, opacities and colours.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import markdown_table, write_section  # noqa: E402

from dreamer.cameras import from_spherical  # noqa: E402
from dreamer.render.splat import rasterize_gaussians  # noqa: E402
from dreamer.render.splat.dense import rasterize_dense  # noqa: E402

PARAMS = ["means", "quats", "scales", "opacities", "colors"]


def scene(n: int, size: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    means = direction * 0.6 * torch.rand(n, 1, generator=g) ** (1 / 3)
    quats = torch.randn(n, 4, generator=g)
    lo, hi = math.log(0.005), math.log(0.05)
    scales = torch.exp(lo + (hi - lo) * torch.rand(n, 3, generator=g))
    opacities = 0.1 + 0.8 * torch.rand(n, generator=g)
    colors = torch.rand(n, 3, generator=g)
    camera = from_spherical(30.0, 20.0, 2.8, 42.5, size, size)
    weights = (torch.randn(1, size, size, 3, generator=g), torch.randn(1, size, size, 1, generator=g))
    return [means, quats, scales, opacities, colors], camera, weights


def forward_backward(render, params, camera, weights):
    """One forward + backward; returns the render and the gradients of the parameters."""
    leaves = [p.clone().requires_grad_() for p in params]
    out = render(*leaves, camera)
    ((out.rgb * weights[0]).sum() + (out.alpha * weights[1]).sum()).backward()
    return out, [p.grad for p in leaves]


def median_ms(render, params, camera, weights, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        forward_backward(render, params, camera, weights)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        forward_backward(render, params, camera, weights)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


def compare(n: int, size: int) -> dict:
    """Errors and gradient cosines of the tile rasterizer against the dense reference."""
    params, camera, weights = scene(n, size)
    out, grads = forward_backward(rasterize_gaussians, params, camera, weights)
    ref, ref_grads = forward_backward(rasterize_dense, params, camera, weights)
    return {"rgb_err": float((out.rgb - ref.rgb).detach().abs().max()),
            "alpha_err": float((out.alpha - ref.alpha).detach().abs().max()),
            "cosines": {k: cosine(a, b) for k, a, b in zip(PARAMS, grads, ref_grads)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per measurement (median)")
    ap.add_argument("--quick", action="store_true", help="3 repeats, for development")
    ap.add_argument("--dense-max-pairs", type=float, default=4096 * 4096,
                    help="skip the dense reference above this many pixel × Gaussian pairs")
    ap.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else args.repeats

    head = compare(4096, 64)
    cases = [(1024, 64), (4096, 64), (16384, 64), (65536, 64), (4096, 128), (4096, 256)]
    rows, timed = [], {}
    for n, size in cases:
        params, camera, weights = scene(n, size)
        ours = median_ms(rasterize_gaussians, params, camera, weights, repeats)
        info = rasterize_gaussians(*params, camera).info
        n_isect, (evaluated, chunks) = info["n_isect"], info["chunks"]
        pairs = n * size * size
        if pairs <= args.dense_max_pairs:
            dense = median_ms(rasterize_dense, params, camera, weights, repeats, warmup=1)
            dense_cell, ratio = f"{dense:.0f}", f"{dense / ours:.0f}×"
        else:
            dense_cell, ratio = f"skipped ({pairs / 1e6:.0f} M pairs)", "–"
        timed[(n, size)] = (ours, dense_cell)
        rows.append([n, f"{size}×{size}", n_isect, f"{100 * evaluated / chunks:.0f} %", f"{ours:.1f}",
                     f"{ours * 1e3 / n_isect:.2f}", dense_cell, ratio])
        print(rows[-1], flush=True)

    ours, dense_cell = timed[(4096, 64)]
    dense = float(dense_cell) if dense_cell[0].isdigit() else float("nan")
    worst_cos = min(head["cosines"].values())
    summary = markdown_table(
        ["", "measured", "target", "met"],
        [["forward + backward, 64×64, 4,096 Gaussians (ms)", f"{ours:.1f}", "≤ 60", ours <= 60],
         ["speed-up over the dense reference", f"{dense / ours:.0f}×", "≥ 30×", dense / ours >= 30],
         ["max abs error, rgb / alpha", f"{head['rgb_err']:.1e} / {head['alpha_err']:.1e}", "≤ 1e-4",
          max(head["rgb_err"], head["alpha_err"]) <= 1e-4],
         ["gradient cosine (worst of " + ", ".join(PARAMS) + ")", f"{worst_cos:.6f}", "≥ 0.999",
          worst_cos >= 0.999]])
    scaling = markdown_table(["Gaussians", "image", "tile intersections", "evaluated (early stop)",
                              "ours (ms)", "µs per intersection", "dense (ms)", "speed-up"], rows)
    body = (f"{summary}\n\nGradient cosines: "
            + ", ".join(f"{k} {v:.6f}" for k, v in head["cosines"].items())
            + f"\n\nScaling (median of {repeats} forward + backward passes, torch threads: {args.threads}; "
            "4×4-pixel tiles; \"evaluated\": the share of intersection chunks not skipped by the early "
            "stop behind saturated pixels; the dense reference is skipped where its pixel × Gaussian "
            f"pairs exceed {args.dense_max_pairs / 1e6:.1f} M):\n\n{scaling}\n")
    print(body)
    if not args.no_write:
        path = write_section("splat-raster", "CPU Gaussian-splat rasterizer", body,
                             "python bench/splat_raster.py " + " ".join(sys.argv[1:]))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
