"""Which feature grid should the NeRF use? Speed and fit quality of each, on this machine.

    python bench/encodings.py                      # full table (~10 minutes on 2 CPU cores)
    python bench/encodings.py --quick --threads 2  # timings only
    python bench/encodings.py --only triplane dense

For each encoding (settings in GRIDS below; parameter counts of the same order), it reports
the best-of-N forward+backward time of a full render (training mode, loss = mean colour) at 64×64
with 64 samples per ray, B=1 and B=4, both with every sample running the MLP ("all samples")
and with the occupancy skip on the initial blob ("skip"); then "fit": the held-out PSNR after
fitting 8 renders of an analytic coloured object (two spheres and a box) for a fixed number
of Adam steps at 32×32.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
import time

import torch

from dreamer.cameras import from_spherical
from dreamer.representations.nerf import NeRF, NeRFConfig

GRIDS = {
    "triplane": dict(grid="triplane", grid_resolution=128, grid_features=8),
    "triplane16": dict(grid="triplane", grid_resolution=128, grid_features=16),
    "dense": dict(grid="dense", grid_resolution=64, grid_features=4),
    "hash": dict(grid="hash", grid_resolution=256, grid_features=2, hash_levels=8),
}


def time_render(model: NeRF, res: int, batch: int, reps: int) -> float:
    """Best-of-`reps` ms of render + backward (the minimum: robust to other processes)."""
    cam = from_spherical(torch.linspace(0, 300, batch), 20.0, 2.8, 42.5, res)
    times = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        out = model.render(cam)
        out.rgb.mean().backward()
        if i:  # the first is a warm-up
            times.append(1000 * (time.perf_counter() - t0))
    model.zero_grad(set_to_none=True)
    return min(times)


def target_renders(cam) -> torch.Tensor:
    """Sphere-traced renders [B, H, W, 3] of a red sphere on a white sphere beside a blue box,
    over a black background."""
    from dreamer.render.rays import camera_rays

    o, d = camera_rays(cam)

    def sdf(p):
        s1 = (p - torch.tensor([0.0, -0.25, 0.0])).norm(dim=-1) - 0.4
        s2 = (p - torch.tensor([0.0, 0.35, 0.0])).norm(dim=-1) - 0.25
        q = (p - torch.tensor([0.45, -0.3, 0.3])).abs() - 0.18
        box = q.clamp_min(0).norm(dim=-1) + q.amax(dim=-1).clamp_max(0)
        return torch.stack([s1, s2, box], dim=-1)

    t = torch.zeros(o.shape[:-1])
    for _ in range(96):
        t = t + sdf(o + d * t[..., None]).amin(dim=-1).clamp_min(0) * 0.9
    dist = sdf(o + d * t[..., None])
    hit = dist.amin(dim=-1) < 1e-2
    colors = torch.tensor([[0.9, 0.9, 0.85], [0.9, 0.15, 0.1], [0.1, 0.3, 0.9]])
    rgb = colors[dist.argmin(dim=-1)]
    return torch.where(hit[..., None], rgb, torch.zeros_like(rgb))


def fit_psnr(kwargs: dict, steps: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    model = NeRF(NeRFConfig(background="black", **kwargs))
    model.train()
    opt = torch.optim.Adam(model.parameter_groups())
    train = from_spherical(torch.arange(8) * 45.0, torch.tensor([15.0, -5.0] * 4), 2.8, 42.5, 32)
    test = from_spherical(torch.tensor([22.5, 200.0]), 30.0, 2.8, 42.5, 32)
    y_train, y_test = target_renders(train), target_renders(test)
    black = torch.zeros(3)
    for step in range(steps):
        model.before_step(step)
        idx = torch.randperm(8)[:4]
        out = model.render(train[idx], background=black)
        loss = (out.rgb - y_train[idx]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        mse = (model.render(test, background=black).rgb - y_test).square().mean()
    return float(-10 * torch.log10(mse))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="timings only, 2 repetitions")
    ap.add_argument("--steps", type=int, default=150, help="Adam steps of the fit")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    ap.add_argument("--only", nargs="*", choices=list(GRIDS), help="measure only these encodings")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    reps = 2 if args.quick else 3
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          "ms = forward+backward, 64x64, 64 samples/ray")
    header = f"{'encoding':<10}{'params':>9}{'all B=1':>10}{'all B=4':>10}{'skip B=1':>10}{'skip B=4':>10}"
    print(header + ("" if args.quick else f"{'fit PSNR':>10}"))
    table_rows = []
    for name, kwargs in GRIDS.items():
        if args.only and name not in args.only:
            continue
        dense = NeRF(NeRFConfig(occupancy=False, **kwargs)).train()
        params = sum(p.numel() for p in dense.encoding.parameters())
        skip = NeRF(NeRFConfig(occupancy=True, **kwargs)).train()
        skip.load_state_dict(dense.state_dict(), strict=False)
        skip.update_occupancy()
        row = [time_render(dense, 64, 1, reps), time_render(dense, 64, 4, reps),
               time_render(skip, 64, 1, reps), time_render(skip, 64, 4, reps)]
        psnr = [] if args.quick else [f"{fit_psnr(kwargs, args.steps):.1f}"]
        print(f"{name:<10}{params / 1e6:>8.2f}M" + "".join(f"{v:>10.0f}" for v in row)
              + "".join(f"{p:>10}" for p in psnr), flush=True)
        table_rows.append([name, f"{params / 1e6:.2f}M", *(f"{v:.0f}" for v in row), *psnr])
    if args.write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from report import markdown_table, write_section

        headers = ["encoding", "grid params", "all B=1 (ms)", "all B=4 (ms)", "skip B=1 (ms)", "skip B=4 (ms)"]
        headers += [] if args.quick else [f"fit PSNR (dB, {args.steps} steps)"]
        body = ("NeRF forward + backward at 64×64, 64 samples per ray, training mode. \"all\" runs the MLP "
                "on every sample; \"skip\" drops samples in empty cells of the occupancy grid (the "
                "initial blob). Triplane is the default: as fast as the dense grid, better fit, fewer "
                "parameters; the pure-PyTorch hash grid is far slower on CPU.\n\n"
                + markdown_table(headers, table_rows))
        write_section("encodings", "NeRF grid encodings", body, "python bench/encodings.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
