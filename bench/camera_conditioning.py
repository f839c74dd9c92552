"""Does a prior's denoised estimate follow the camera? (issue 19, "measure it first"; issue 27, `aligned`)

    python bench/camera_conditioning.py [--priors tiny tiny-mv reference] [--prompts "a red chair" ...]
                                        [--noise-steps 200 800] [--write]

For each prompt, ground-truth renders y_a of a view set at azimuths a + k·360°/V (V = the prior's
views per sample: 1 for single-view priors, 4 for `tiny-mv`; elevation 20°) are noised to x_t, and
the prior predicts x̂0 once with the true cameras (a) and once with every camera turned by the same
angle (b = a + 45° or + 90°). Same noise, same text; only the camera differs. Per noise draw:

- **aligned** = ⟨x̂0(a) − x̂0(b), y_a − y_b⟩ / ‖y_a − y_b‖²: the share of the true view change that the
  estimate follows when only the camera changes (0: the camera is ignored; 1: it follows in full).
  Measured on the conditional x̂0 (no CFG) and with CFG at the default preset's scale.
- **pull** = share of draws where x̂0(a) is nearer y_a than x̂0(b) is (0.5: chance), with CFG.

(The former `shift` = ‖x̂0(a) − x̂0(b)‖ / ‖y_a − y_b‖ is gone: any input change moves an untrained
network's output, so an untrained net given a raymap already scored 0.24–0.55.) The exact
`reference` prior is the camera-aware yardstick: near 0 at low t (x_t still shows the view), 0.4–0.6
at t = 800.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from priors import load_prior  # noqa: E402
from report import markdown_table, write_labelled_section  # noqa: E402

from dreamer.priors import schedule  # noqa: E402

# the asymmetric shapes: a turn of 45° or 90° changes what they look like
PROMPTS = ["a red chair", "a blue house", "a brown table", "a yellow mug", "a green lamp", "a purple mushroom"]
TURNS = (45.0, 90.0)
ALIKE = 0.03  # sets whose true views differ by less than this RMS (pixels in [−1, 1]) look alike: skipped


@dataclass
class Cell:
    aligned: float  # conditional x̂0, no CFG
    aligned_cfg: float  # with CFG
    pull: float  # with CFG


def x0_estimate(prior, x_t, t, embedding, camera, scale: float | None):
    """x̂0 [B, 3, S, S] from ε̂: conditional when `scale` is None, else CFG at `scale`."""
    batch = x_t.shape[0]
    eps = prior.predict_noise(x_t, t, embedding.conditional(None, batch), camera)
    if scale is not None:
        eps_u = prior.predict_noise(x_t, t, embedding.unconditional(batch), camera)
        eps = eps_u + scale * (eps - eps_u)
    alpha, sigma = schedule.alphas_sigmas(prior.alphas_cumprod, t, x_t.ndim)
    return schedule.x0_from_eps(x_t, eps, alpha, sigma)


def set_cameras(azimuth: float, views: int, draws: int, size: int):
    """`draws` copies of the view set at azimuth + k·360°/V (set-major)."""
    from dreamer.cameras import from_spherical

    az = (azimuth + torch.arange(views) * 360.0 / views).repeat(draws)
    return from_spherical(az, 20.0, 2.8, 42.5, size, size)


def aligned_share(x0_a: torch.Tensor, x0_b: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """[draws] ⟨x̂0(a) − x̂0(b), y_a − y_b⟩ / ‖y_a − y_b‖², each over a whole set ([draws, V·3·S·S] flattened)."""
    return ((x0_a - x0_b) * dy).sum(dim=1) / (dy * dy).sum(dim=1).clamp_min(1e-9)


@torch.no_grad()
def measure(prior, prompt: str, t: int, azimuth: float, turn: float, draws: int, scale: float) -> Cell | None:
    from dreamer.shapes import parse_prompt, render_spec

    views, size = prior.views_per_sample, prior.image_size
    spec = parse_prompt(prompt)
    cams_a, cams_b = set_cameras(azimuth, views, draws, size), set_cameras(azimuth + turn, views, draws, size)
    y_a = prior.encode_images(render_spec(spec, cams_a[:views], supersample=2).rgb.permute(0, 3, 1, 2))  # [V, 3, S, S]
    y_b = prior.encode_images(render_spec(spec, cams_b[:views], supersample=2).rgb.permute(0, 3, 1, 2))
    dy = (y_a - y_b).reshape(1, -1)
    if float(dy.norm()) < ALIKE * dy.numel() ** 0.5:
        return None  # the object looks the same from both sets of cameras
    gen = torch.Generator().manual_seed(t)
    noise = torch.randn((draws * views, *y_a.shape[1:]), generator=gen)
    truth = y_a.repeat(draws, 1, 1, 1)
    tt = torch.full((draws * views,), t, dtype=torch.long)
    x_t = schedule.add_noise(truth, noise, tt, prior.alphas_cumprod)
    emb = prior.encode_prompt(prompt)
    flat = lambda x: x.reshape(draws, -1)  # noqa: E731 - one row per set
    plain = aligned_share(flat(x0_estimate(prior, x_t, tt, emb, cams_a, None)),
                          flat(x0_estimate(prior, x_t, tt, emb, cams_b, None)), dy)
    x0_a, x0_b = (flat(x0_estimate(prior, x_t, tt, emb, c, scale)) for c in (cams_a, cams_b))
    guided = aligned_share(x0_a, x0_b, dy)
    nearer = ((x0_a - flat(truth)).norm(dim=1) < (x0_b - flat(truth)).norm(dim=1)).float()
    return Cell(float(plain.mean()), float(guided.mean()), float(nearer.mean()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--priors", nargs="*", default=["tiny", "tiny-mv", "reference"], help="prior names")
    p.add_argument("--prompts", nargs="*", default=PROMPTS)
    p.add_argument("--noise-steps", nargs="*", type=int, default=[200, 800])
    p.add_argument("--draws", type=int, default=8)
    p.add_argument("--guidance-scale", type=float, default=5.0)
    p.add_argument("--weights", help="weights folder of the tiny-mv or tiny-3d prior listed (default: the shipped one)")
    p.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    p.add_argument("--label", help="write a section of its own (earlier sections are kept), e.g. the commit or the prior")
    args = p.parse_args()

    rows, summary = [], []
    for name in args.priors:
        prior = load_prior(name, args.weights)
        per_t: dict[int, list[Cell]] = {t: [] for t in args.noise_steps}
        for prompt in args.prompts:
            for turn in TURNS:
                cells = [measure(prior, prompt, t, 0.0, turn, args.draws, args.guidance_scale) for t in args.noise_steps]
                if any(c is None for c in cells):
                    continue
                for t, c in zip(args.noise_steps, cells):
                    per_t[t].append(c)
                rows.append([name, prompt, f"+{turn:.0f}°", *[v for c in cells for v in (c.aligned, c.aligned_cfg, c.pull)]])
                print(rows[-1], flush=True)
        means = [sum(getattr(c, k) for c in per_t[t]) / max(len(per_t[t]), 1)
                 for t in args.noise_steps for k in ("aligned", "aligned_cfg", "pull")]
        summary.append([name, prior.views_per_sample, *means])
    headers = [f"{k} t={t}" for t in args.noise_steps for k in ("aligned", "aligned CFG", "pull")]
    mean_table = markdown_table(["prior", "views per sample", *headers], summary)
    table = markdown_table(["prior", "prompt", "turn", *headers], rows)
    print(mean_table)
    if args.write:
        body = (f"Conditional x̂0 (`aligned`) and CFG {args.guidance_scale} (`aligned CFG`, `pull`), {args.draws} noise "
                "draws per cell; ground truth at elevation 20°, distance 2.8, fovy 42.5°; a view set of V views at "
                "azimuths 0° + k·360°/V against the same set turned by 45° or 90°. `aligned` = ⟨x̂0(a) − x̂0(b), y_a − "
                "y_b⟩ / ‖y_a − y_b‖² (the share of the true view change the estimate follows; 0: the camera is "
                "ignored). `pull` = share of draws where the true cameras' x̂0 is nearer the true views (0.5: "
                f"chance). `reference` is the exact prior.\n\nMeans over the prompts and turns:\n\n{mean_table}\n\n"
                f"Per prompt:\n\n{table}")
        write_labelled_section("camera-conditioning-aligned", "Camera conditioning: aligned, per prior", args.label, body,
                               "python bench/camera_conditioning.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
