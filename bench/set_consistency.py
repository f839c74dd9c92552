"""Do a prior's views agree on one object? Joint 4-view samples against the truth at the best common yaw.

    python bench/set_consistency.py [--priors tiny-mv tiny] [--seeds 4] [--write] [--sheet docs/tiny-mv-sets.png]

For each asymmetric prompt (chair, house, table, mug, lamp, mushroom) and seed, the prior samples a
turntable of 4 views (azimuths 0°, 90°, 180°, 270°; elevation 20°) with `dreamer prior sample`'s
sampler: a multi-view prior samples them jointly as one set, a single-view prior one by one. Each
sample's silhouette is its pixels that differ from the background (estimated per row from the left
and right edge pixels, so solid and vertical-gradient backgrounds both work). The truth is rendered
at every common yaw offset δ (0°…355°, step 5°: the object may be drawn turned, as long as all
views agree), and the δ with the best mean silhouette IoU over the 4 views is kept. Reported:

- `IoU` — the mean silhouette IoU over the set at the best common yaw (target ≥ 0.8);
- `shape right` — the share of views whose shape the evaluator (assets/evaluator) reads as the
  prompt's (target ≥ 90 %).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from priors import load_prior  # noqa: E402
from report import markdown_table, write_section  # noqa: E402

PROMPTS = ["a red chair", "a blue house", "a brown table", "a yellow mug", "a green lamp", "a purple mushroom"]
VIEWS = 4
YAW_STEP = 5.0
EDGE_THRESHOLD = 0.12  # RGB distance from the background estimate that counts as object


def silhouettes(images: torch.Tensor) -> torch.Tensor:
    """[N, S, S] bool: pixels farther than EDGE_THRESHOLD from their row's background (edge pixels' mean)."""
    background = 0.5 * (images[..., :1] + images[..., -1:])  # [N, 3, S, 1]
    return (images - background).norm(dim=1) > EDGE_THRESHOLD


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N] IoU of boolean masks [N, S, S] (1 where both are empty)."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def best_yaw(spec, masks: torch.Tensor, size: int) -> tuple[float, torch.Tensor]:
    """(δ, per-view IoU [V]) of the common yaw offset whose truth silhouettes best match `masks` [V, S, S]."""
    from dreamer.cameras import turntable
    from dreamer.shapes import render_spec

    best = (0.0, torch.full((len(masks),), -1.0))
    for delta in torch.arange(0.0, 360.0, YAW_STEP).tolist():
        cams = turntable(len(masks), size)
        cams = _turned(cams, delta)
        truth = render_spec(spec, cams, supersample=2).alpha[..., 0] > 0.5
        score = iou(masks, truth)
        if float(score.mean()) > float(best[1].mean()):
            best = (delta, score)
    return best


def _turned(cams, delta: float):
    from dreamer.cameras import from_spherical

    return from_spherical(cams.azimuth + delta, cams.elevation, cams.distance, cams.fovy, cams.width, cams.height)


def run_prior(name: str, seeds: int, sheet_rows: list, mv_weights: str | None = None):
    from dreamer.cameras import turntable
    from dreamer.eval.classifier import default_evaluator
    from dreamer.priors.tiny.sample import SamplerConfig, sample_views
    from dreamer.shapes import parse_prompt, render_spec

    prior = load_prior(name, mv_weights)
    evaluator = default_evaluator()
    size = prior.image_size
    cams = turntable(VIEWS, size, elevation=20.0, distance=2.8, fovy=42.5)
    rows, ious, rights = [], [], []
    for prompt in PROMPTS:
        spec = parse_prompt(prompt)
        for seed in range(seeds):
            if prior.views_per_sample > 1:
                images = sample_views(prior, prompt, cams, SamplerConfig(), seed=seed)
            else:  # one view at a time: what a single-view prior gives SDS
                images = torch.cat([sample_views(prior, prompt, cams[i:i + 1], SamplerConfig(), seed=seed * VIEWS + i)
                                    for i in range(VIEWS)])
            delta, per_view = best_yaw(spec, silhouettes(images), size)
            right = [s == spec.shape for s in evaluator.predict(images).shapes]
            ious.append(float(per_view.mean()))
            rights += right
            rows.append([name, prompt, seed, f"{delta:.0f}°", float(per_view.mean()), f"{sum(right)}/{VIEWS}"])
            print(rows[-1], flush=True)
            if seed == 0:
                truth = render_spec(spec, _turned(cams, delta), supersample=2).rgb.permute(0, 3, 1, 2)
                sheet_rows.append((f"{name}: {prompt}", images, truth))
    summary = [name, prior.views_per_sample, len(ious), sum(ious) / len(ious), sum(rights) / len(rights)]
    return rows, summary


def write_sheet(path: Path, sheet_rows: list) -> None:
    from dreamer.priors.tiny.sample import save_grid

    images = torch.cat([torch.cat([samples, truth]) for _, samples, truth in sheet_rows])
    save_grid(images, path, columns=2 * VIEWS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--priors", nargs="*", default=["tiny-mv", "tiny"])
    p.add_argument("--seeds", type=int, default=4, help="sets sampled per prompt (seeds 0..N−1)")
    p.add_argument("--weights", help="weights folder of the tiny-mv or tiny-3d prior listed (default: the shipped one)")
    p.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    p.add_argument("--label", help="write a section of its own (earlier sections are kept), e.g. the commit or the prior")
    p.add_argument("--sheet", type=Path, help="write a PNG: per prior and prompt, seed 0's 4 views, then the truth")
    args = p.parse_args()

    rows, summary, sheet_rows = [], [], []
    for name in args.priors:
        r, s = run_prior(name, args.seeds, sheet_rows, args.weights)
        rows += r
        summary.append(s)
    mean_table = markdown_table(["prior", "views per sample", "sets", "mean silhouette IoU", "shape right"], summary)
    print(mean_table)
    if args.sheet:
        write_sheet(args.sheet, sheet_rows)
        print(f"written: {args.sheet}")
    if args.write:
        body = (f"Turntables of {VIEWS} views (0°, 90°, 180°, 270°, elevation 20°), DDIM 50 steps, CFG 2, η = 1; "
                "silhouettes against the truth at the best common yaw (step 5°); `shape right` = the evaluator's "
                "shape reading per view. Targets: IoU ≥ 0.8, shape right ≥ 90 %.\n\n"
                f"{mean_table}\n\nPer set:\n\n"
                + markdown_table(["prior", "prompt", "seed", "best yaw", "IoU", "shape right"], rows))
        name, title = "set-consistency", "View-set consistency of the embedded priors"
        if args.label:
            name, title = f"{name}-{args.label}", f"{title} ({args.label})"
        write_section(name, title, body,
                      "python bench/set_consistency.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
