"""Does classifier-free guidance shift an object's colour? (issue 27, "colour drift")

    python bench/cfg_colour.py [--priors tiny-3d tiny] [--prompts "a white house" ...] [--weights FOLDER] [--write]

For each prompt, the ground truth's 4-view set (elevation 20°, azimuths 0/90/180/270°, 32 px) over a
solid background is noised to x_t at t = 200, 400 and 600, and the prior's x̂0 is read inside the
object's mask: conditional, unconditional, CFG at the default preset's scale (5), and CFG with its
colour part at scale 1 (`guidance.chroma_guidance_scale`, functional.chroma_cfg). Reported per prompt:
the mean RGB of each estimate over the object's pixels, averaged over backgrounds, t and noise draws;
its colour error ‖mean − truth's mean‖ (RGB in [0, 1]); and its tint, the part of that error that is not
a change of brightness (the difference with its own channel mean removed). A CFG tint far above the
conditional's, pointing away from the unconditional mean, is the colour shift that turns grey and white
cyan-green in multi-view SDS.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from priors import load_prior  # noqa: E402
from report import markdown_table, write_labelled_section  # noqa: E402

from dreamer.guidance import functional as F  # noqa: E402
from dreamer.priors import schedule  # noqa: E402

PROMPTS = ["a white house", "a gray snowman", "a white pyramid", "a brown house", "a pink cube", "a red chair",
           "a blue pyramid", "a yellow mug", "a green lamp", "a purple torus"]
BACKGROUNDS = ((0.9, 0.5, 0.2), (0.2, 0.6, 0.9), (0.5, 0.5, 0.5), (0.95, 0.95, 0.95))
NOISE_STEPS = (200, 400, 600)
ESTIMATES = ("cond", "uncond", "cfg", "chroma")


def object_means(prior, prompt: str, scale: float, draws: int, seed: int) -> dict[str, torch.Tensor]:
    """{estimate: mean RGB [3] over the object's pixels, averaged over backgrounds, t and draws}, plus 'truth'."""
    from dreamer.cameras import turntable
    from dreamer.shapes import parse_prompt, render_spec

    gen = torch.Generator().manual_seed(seed)
    size = prior.image_size
    cams = turntable(4, size, elevation=20.0, distance=2.8, fovy=42.5)
    emb = prior.encode_prompt(prompt)
    cond, uncond = emb.cond.expand(4, *emb.cond.shape[1:]), emb.uncond.expand(4, *emb.uncond.shape[1:])
    sums = {k: torch.zeros(3) for k in ("truth", *ESTIMATES)}
    count = 0
    spec = parse_prompt(prompt)
    for bg in BACKGROUNDS:
        truth = render_spec(spec, cams, background=bg)
        z = truth.rgb.permute(0, 3, 1, 2) * 2 - 1  # [4, 3, S, S] in [−1, 1]
        mask = (truth.alpha.permute(0, 3, 1, 2) > 0.5).float()
        mean = lambda x: ((x.clamp(-1, 1) + 1) / 2 * mask).sum((0, 2, 3)) / mask.sum((0, 2, 3))  # noqa: E731
        for t in NOISE_STEPS:
            tt = torch.full((4,), t, dtype=torch.long)
            alpha, sigma = schedule.alphas_sigmas(prior.alphas_cumprod.cpu(), tt, 4)
            for _ in range(draws):
                x_t = alpha * z + sigma * torch.randn(z.shape, generator=gen)
                with torch.no_grad():
                    e_c = prior.predict_noise(x_t, tt, cond, cams)
                    e_u = prior.predict_noise(x_t, tt, uncond, cams)
                e_cfg = F.classifier_free_guidance(e_u, e_c, scale)
                e_chroma = F.chroma_cfg(e_cfg, e_c, e_u, 1.0)
                sums["truth"] += mean(z)
                for name, eps in zip(ESTIMATES, (e_c, e_u, e_cfg, e_chroma)):
                    sums[name] += mean(schedule.x0_from_eps(x_t, eps, alpha, sigma))
                count += 1
    return {k: v / count for k, v in sums.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--priors", nargs="*", default=["tiny-3d", "tiny"], help="prior names")
    p.add_argument("--prompts", nargs="*", default=PROMPTS)
    p.add_argument("--draws", type=int, default=2, help="noise draws per background and t")
    p.add_argument("--guidance-scale", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", help="a candidate weights folder for the multi-view priors (tiny-mv, tiny-3d) instead "
                   "of the shipped one")
    p.add_argument("--write", action="store_true", help="write the tables to docs/benchmarks.md")
    p.add_argument("--label", help="a section of its own (earlier sections are kept)")
    args = p.parse_args()

    fmt = lambda c: "(" + ", ".join(f"{float(v):.2f}" for v in c) + ")"  # noqa: E731
    rows, summary = [], []
    for name in args.priors:
        prior = load_prior(name, args.weights)
        errors = {k: [] for k in ESTIMATES}
        for prompt in args.prompts:
            m = object_means(prior, prompt, args.guidance_scale, args.draws, args.seed)
            err = {k: float((m[k] - m["truth"]).norm()) for k in ESTIMATES}
            tint = {k: float((m[k] - m["truth"] - (m[k] - m["truth"]).mean()).norm()) for k in ESTIMATES}
            for k in ESTIMATES:
                errors[k].append((err[k], tint[k]))
            rows.append([name, prompt, fmt(m["truth"]), *[f"{fmt(m[k])} {err[k]:.3f} / {tint[k]:.3f}" for k in ESTIMATES]])
            print(rows[-1], flush=True)
        summary.append([name, *[f"{sum(e for e, _ in errors[k]) / len(errors[k]):.3f} / "
                                f"{sum(c for _, c in errors[k]) / len(errors[k]):.3f}" for k in ESTIMATES]])
    labels = ["conditional", "unconditional", f"CFG {args.guidance_scale:g}", f"CFG {args.guidance_scale:g}, colour at 1"]
    mean_table = markdown_table(["prior", *[f"{k}: error / tint" for k in labels]], summary)
    table = markdown_table(["prior", "prompt", "truth's mean RGB", *[f"{k}: mean RGB, error / tint" for k in labels]],
                           rows)
    print(mean_table)
    if args.write:
        body = (f"Object-pixel mean colour of the prior's x̂0 for the ground truth's 4-view set (elevation 20°, "
                f"{prior.image_size} px) over {len(BACKGROUNDS)} solid backgrounds, noised at t = "
                f"{', '.join(map(str, NOISE_STEPS))}, {args.draws} draws each; error = ‖mean − truth's mean‖ in RGB "
                "[0, 1]; tint = the same with the difference's own channel mean removed (error that is not "
                "brightness). `colour at 1`: CFG whose colour part (each pixel's deviation from its channel mean) is "
                "taken at scale 1 while the grey part keeps the full scale (`guidance.chroma_guidance_scale`)."
                f"\n\nMeans over the prompts:\n\n{mean_table}\n\nPer prompt:\n\n{table}")
        write_labelled_section("cfg-colour", "CFG and colour: the object's mean colour under guidance", args.label, body,
                               "python bench/cfg_colour.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
