"""Can a different sampler fix the tiny prior's weak shapes? Sample accuracy of sampler variants.

The shipped sampler (DDIM 50 steps, η 1, CFG 2; `dreamer prior sample`) is compared, on the same
prompts, cameras and seeds as bench/prior_accuracy.py, with:

- more steps (150);
- resampling (RePaint-style): at every step with t ≥ `from`, the new sample is noised back to t
  and the step redone `n` times, giving the model more tries to settle the silhouette;
- autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"):
  ε̂ = ε̂_weak + w (ε̂_c − ε̂_weak), with a weaker model of the same data as the "bad version"
  (`--weaker`, e.g. the first shipped weights: `git show b525012:assets/priors/tiny/...`),
  alone or on top of CFG.

Prints colour / shape accuracy per variant (default: the cone, pyramid and mug, the shapes the
shipped prior gets wrong most often). Takes ~3 min per variant for 120 samples on 2 cores.
Usage: python bench/prior_sampler_variants.py [--weaker DIR] [--shapes cone,pyramid,mug] [--views 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prior_accuracy import eval_cameras, score  # noqa: E402

from dreamer.cameras import Camera  # noqa: E402
from dreamer.guidance.functional import classifier_free_guidance  # noqa: E402
from dreamer.priors.tiny.captions import split_combos  # noqa: E402
from dreamer.priors.tiny.prior import TinyPrior, TinyPriorConfig  # noqa: E402
from dreamer.priors.tiny.sample import ddim_scheduler  # noqa: E402


@dataclass(frozen=True)
class Variant:
    name: str
    cfg: float = 2.0  # CFG scale of the shipped model (1 = conditional prediction only)
    autoguidance: float = 0.0  # extra weight on (ε̂_c − ε̂_weak); 0 = off
    steps: int = 50
    resample: int = 0  # redo each step this many times at t >= resample_from
    resample_from: int = 300


BASE = [Variant("shipped sampler (CFG 2, 50 steps)"), Variant("150 steps", steps=150),
        Variant("resample ×1 at t ≥ 300", resample=1), Variant("resample ×3 at t ≥ 400", resample=3, resample_from=400)]
WITH_WEAKER = [Variant("autoguidance w = 2", cfg=1.0, autoguidance=1.0),
               Variant("autoguidance w = 3", cfg=1.0, autoguidance=2.0),
               Variant("CFG 2 + autoguidance 1", autoguidance=1.0)]


class GuidedSampler:
    """DDIM (η 1) on the shipped prior with CFG, optional autoguidance and optional resampling."""

    def __init__(self, prior: TinyPrior, weaker: TinyPrior | None) -> None:
        self.prior, self.weaker = prior, weaker

    def _texts(self, prior: TinyPrior, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = {p: prior.encode_prompt(p) for p in dict.fromkeys(prompts)}
        return (torch.cat([enc[p].conditional(None, 1) for p in prompts]),
                torch.cat([enc[p].unconditional(1) for p in prompts]))

    @torch.no_grad()
    def sample(self, prompts: list[str], cameras: Camera, v: Variant, seed: int) -> torch.Tensor:
        n = len(prompts)
        cond, uncond = self._texts(self.prior, prompts)
        weak_cond = self._texts(self.weaker, prompts)[0] if v.autoguidance else None
        cams2 = Camera(cameras.c2w.repeat(2, 1, 1), cameras.fovy.repeat(2), cameras.width, cameras.height)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(n, *self.prior.latent_shape, generator=gen)
        scheduler = ddim_scheduler(self.prior, v.steps)
        acp = self.prior.alphas_cumprod.cpu()
        stride = scheduler.config.num_train_timesteps // v.steps

        def eps_at(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            tt = torch.full((n,), int(t), dtype=torch.long)
            if v.cfg == 1.0:
                e_c = eps = self.prior.predict_noise(x, tt, cond, cameras).float()
            else:
                e_c, e_u = self.prior.predict_noise(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([cond, uncond]),
                                                    cams2).float().chunk(2)
                eps = classifier_free_guidance(e_u, e_c, v.cfg)
            if v.autoguidance:
                eps = eps + v.autoguidance * (e_c - self.weaker.predict_noise(x, tt, weak_cond, cameras).float())
            return eps

        for t in scheduler.timesteps:
            x_prev = scheduler.step(eps_at(x, t), t, x, eta=1.0, generator=gen).prev_sample
            if v.resample and int(t) >= v.resample_from:
                keep = acp[int(t)] / (acp[int(t) - stride] if int(t) >= stride else torch.tensor(1.0))
                for _ in range(v.resample):  # back to t with fresh noise, then the step again
                    x = keep.sqrt() * x_prev + (1 - keep).sqrt() * torch.randn(x.shape, generator=gen)
                    x_prev = scheduler.step(eps_at(x, t), t, x, eta=1.0, generator=gen).prev_sample
            x = x_prev
        return self.prior.decode(x).cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="assets/priors/tiny")
    parser.add_argument("--weaker", help="weights folder of a weaker model, for the autoguidance variants")
    parser.add_argument("--shapes", default="cone,pyramid,mug")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prior = TinyPrior(TinyPriorConfig(weights=args.weights))
    weaker = TinyPrior(TinyPriorConfig(weights=args.weaker)) if args.weaker else None
    sampler = GuidedSampler(prior, weaker)
    specs = split_combos(tuple(args.shapes.split(",")))[0]
    prompts = [s.prompt for s in specs for _ in range(args.views)]
    cameras = eval_cameras(prior, len(prompts), 0)
    print("| sampler | samples | colour | shape | per shape | seconds |\n|---|---|---|---|---|---|")
    for v in BASE + (WITH_WEAKER if weaker else []):
        t0 = time.perf_counter()
        images = torch.cat([sampler.sample(prompts[i:i + 64], cameras[i:i + 64], v, seed=i)
                            for i in range(0, len(prompts), 64)])
        r = score(images, specs, args.views)
        per_shape = ", ".join(f"{k} {a:.2f}" for k, a in sorted(r["per_shape"].items()))
        print(f"| {v.name} | {r['n']} | {r['colour']:.3f} | {r['shape']:.3f} | {per_shape} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
