"""What the shipped tiny prior knows: sample accuracy judged by the evaluator, load time, CFG speed.

For every colour × shape combination (the 158 trained ones and the 18 held-out ones) it samples
`--views` images from random cameras (azimuth U(0, 360), elevation U(0, 40), distance 2.8) with
DDIM + CFG as `dreamer prior sample` does, and classifies them with the evaluator. The same
cameras' ground-truth renders (on random solid backgrounds) are classified too: what a perfect
prior would score, since some views hide what tells two shapes apart (a mug's handle behind it). Writes the
"Tiny prior" section of docs/benchmarks.md and a contact sheet docs/tiny-prior-samples.png
(one row per shape: ground truth, then samples). Takes ~20 minutes on 2 cores.
Usage: python bench/prior_accuracy.py [--weights assets/priors/tiny] [--views 4] [--steps 50] [--guidance 2]
       [--high-noise-guidance 5] [--eta 1] [--shapes cone,pyramid] [--timing-only] [--timing-against WEIGHTS]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import DOC, markdown_table, write_section  # noqa: E402

from dreamer.cameras import from_spherical  # noqa: E402
from dreamer.eval.classifier import default_evaluator  # noqa: E402
from dreamer.priors.tiny.captions import split_combos  # noqa: E402
from dreamer.priors.tiny.prior import TinyPrior, TinyPriorConfig  # noqa: E402
from dreamer.priors.tiny.sample import SamplerConfig, ground_truth_views, sample_images, save_grid  # noqa: E402


def random_cameras(n: int, size: int, fovy: float, generator: torch.Generator):
    az = torch.rand(n, generator=generator) * 360
    el = torch.rand(n, generator=generator) * 40
    return from_spherical(az, el, torch.full((n,), 2.8), fovy, size, size)


def eval_cameras(prior, n: int, seed: int):
    """The n random cameras of a run with `seed`: the samples and their ground truth share them."""
    return random_cameras(n, prior.image_size, float(prior.info.data.get("fovy", 42.5)),
                          torch.Generator().manual_seed(seed))


def sample_all(prior, specs, views: int, sampler: SamplerConfig, batch: int, seed: int):
    """[len(specs)·views, 3, S, S] samples, spec-major, in batches of `batch` images."""
    from tqdm.auto import tqdm

    prompts = [s.prompt for s in specs for _ in range(views)]
    cams = eval_cameras(prior, len(prompts), seed)
    out = []
    for i in tqdm(range(0, len(prompts), batch), desc="sampling", unit="batch"):
        out.append(sample_images(prior, prompts[i:i + batch], cams[i:i + batch], sampler, seed=seed + i))
    return torch.cat(out)


def ground_truth_all(prior, specs, views: int, seed: int) -> torch.Tensor:
    """The library renders of `specs` from the cameras `sample_all` uses, on random solid backgrounds."""
    cams = eval_cameras(prior, len(specs) * views, seed)
    backgrounds = torch.rand(len(specs), 3, generator=torch.Generator().manual_seed(seed + 1))
    return torch.cat([ground_truth_views(s.prompt, cams[i * views:(i + 1) * views], background=tuple(backgrounds[i].tolist()))
                      for i, s in enumerate(specs)])


def score(images, specs, views: int) -> dict:
    pred = default_evaluator().predict(images)
    labels = [s for s in specs for _ in range(views)]
    colour = [p == s.colour for p, s in zip(pred.colours, labels)]
    shape = [p == s.shape for p, s in zip(pred.shapes, labels)]
    per_shape: dict[str, list[bool]] = {}
    for ok, s in zip(shape, labels):
        per_shape.setdefault(s.shape, []).append(ok)
    return {"colour": sum(colour) / len(labels), "shape": sum(shape) / len(labels),
            "both": sum(c and s for c, s in zip(colour, shape)) / len(labels), "n": len(labels),
            "per_shape": {k: sum(v) / len(v) for k, v in per_shape.items()}}


def load_seconds(weights: str) -> tuple[float, TinyPrior]:
    """Seconds to construct the prior with its text encoder and encode one prompt."""
    t0 = time.perf_counter()
    prior = TinyPrior(TinyPriorConfig(weights=weights))
    prior.encode_prompt("a red chair")
    return time.perf_counter() - t0, prior


def timing(weights: str) -> tuple[float, float, float]:
    """(cold load s, load s once the libraries are imported, median ms of one CFG evaluation at batch 2).

    The first load in a fresh process also imports diffusers (which pulls in transformers, peft and
    torch._dynamo): every dreamer command pays that import once, whatever prior it uses, so both
    figures are reported.
    """
    cold, _ = load_seconds(weights)
    warm, prior = load_seconds(weights)
    return cold, warm, cfg_medians([prior], rounds=25)[0]


def cfg_medians(priors: list, rounds: int) -> list[float]:
    """Median ms of one CFG evaluation (batch 2) per prior, the priors taking turns each round
    (so a change in the host's load hits them alike); the first 5 rounds are warm-up."""
    calls = []
    for prior in priors:
        emb = prior.encode_prompt("a red chair")
        text = torch.cat([emb.conditional(None, 1), emb.unconditional(1)])
        cams = random_cameras(1, prior.image_size, 42.5, torch.Generator().manual_seed(0))
        calls.append((prior, torch.randn(2, *prior.latent_shape, generator=torch.Generator().manual_seed(0)), text, cams))
    times: list[list[float]] = [[] for _ in priors]
    for i in range(rounds):
        for k, (prior, x, text, cams) in enumerate(calls):
            t1 = time.perf_counter()
            prior.predict_noise(x, torch.tensor([500, 500]), text, cams)
            if i >= 5:
                times[k].append((time.perf_counter() - t1) * 1e3)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="assets/priors/tiny")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance", type=float, default=2.0, help="CFG scale on the low-noise half")
    parser.add_argument("--high-noise-guidance", type=float, default=None, help="CFG scale at t >= 500 (default: --guidance)")
    parser.add_argument("--eta", type=float, default=1.0, help="DDIM η (0 deterministic, 1 DDPM-like)")
    parser.add_argument("--shapes", help="comma-separated shapes to score (a quick look; leaves docs/ alone)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument("--timing-only", action="store_true", help="print the load and CFG timings only")
    parser.add_argument("--timing-against", metavar="WEIGHTS",
                        help="print the CFG medians of --weights and WEIGHTS, taking turns for 40 rounds, and stop")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.timing_against:
        pair = [TinyPrior(TinyPriorConfig(weights=w)) for w in (args.weights, args.timing_against)]
        a, b = cfg_medians(pair, rounds=40)
        print(f"CFG median {a:.1f} ms ({args.weights}) vs {b:.1f} ms ({args.timing_against}), taking turns, "
              f"{args.threads} threads")
        return
    cold_s, load_s, cfg_ms = timing(args.weights)
    if args.timing_only:
        print(f"load {load_s:.2f} s (cold {cold_s:.2f} s), CFG {cfg_ms:.1f} ms, {args.threads} threads")
        return
    prior = TinyPrior(TinyPriorConfig(weights=args.weights))
    sampler = SamplerConfig(steps=args.steps, guidance=args.guidance, high_noise_guidance=args.high_noise_guidance,
                            eta=args.eta)
    trained, held_out = split_combos(tuple(args.shapes.split(",")) if args.shapes else None)
    t0 = time.perf_counter()
    results = {}
    for name, specs in (("in-vocabulary (trained pairs)", trained), ("held-out pairs", held_out)):
        if not specs:  # a --shapes subset may hold no held-out pair
            continue
        images = sample_all(prior, specs, args.views, sampler, args.batch, args.seed)
        truth = score(ground_truth_all(prior, specs, args.views, args.seed), specs, args.views)
        results[name] = (score(images, specs, args.views), images, specs, truth)
    minutes = (time.perf_counter() - t0) / 60

    rows = [[name, r["n"], r["colour"], r["shape"], r["both"], truth["colour"], truth["shape"]]
            for name, (r, _, _, truth) in results.items()]
    table = markdown_table(["prompts", "samples", "colour acc.", "shape acc.", "both", "ground truth: colour",
                            "ground truth: shape"], rows)
    trained_scores = results["in-vocabulary (trained pairs)"][0]["per_shape"]
    trained_truth = results["in-vocabulary (trained pairs)"][3]["per_shape"]
    held_scores = results["held-out pairs"][0]["per_shape"] if "held-out pairs" in results else {}
    shape_rows = [[s, trained_scores[s], trained_truth[s], held_scores.get(s, "—")] for s in trained_scores]
    shape_table = markdown_table(["shape", "shape acc. (trained pairs)", "ground truth, same cameras",
                                  "shape acc. (held-out pairs)"], shape_rows)
    print(table, "\n\n", shape_table, f"\n\nload {load_s:.2f} s (cold {cold_s:.2f} s), CFG {cfg_ms:.1f} ms")

    sheet = contact_sheet(results["in-vocabulary (trained pairs)"][1], trained, args.views, prior)
    if args.no_write or args.shapes:
        return
    save_grid(sheet, DOC.parent / "tiny-prior-samples.png", columns=args.views + 1)
    scales = (f"CFG {args.guidance}" if args.high_noise_guidance is None
              else f"CFG {args.high_noise_guidance} at t ≥ 500, then {args.guidance}")
    body = (f"Samples: DDIM {args.steps} steps, η {args.eta}, {scales}, {args.views} random views per colour × shape "
            f"combination (azimuth 0–360°, elevation 0–40°, distance 2.8), classified by the evaluator "
            f"(`assets/evaluator/`). Sampling took {minutes:.1f} min.\n\n{table}\n\n{shape_table}\n\n"
            f"Loading the prior and its text encoder and encoding one prompt: {load_s:.2f} s once the libraries "
            f"are imported; {cold_s:.2f} s as the first thing in a fresh process, which includes importing "
            "diffusers (with transformers, peft and torch._dynamo), a cost every dreamer command pays once. "
            f"One CFG evaluation (batch 2, 32 px): {cfg_ms:.1f} ms median.\n\n"
            "![samples](tiny-prior-samples.png)  \nEach row: the ground truth, then samples from random views.")
    cmd = "python bench/prior_accuracy.py " + " ".join(sys.argv[1:])
    write_section("tiny-prior", "Tiny prior: sample accuracy, load time, CFG speed", body, cmd.strip())


def contact_sheet(images: torch.Tensor, specs, views: int, prior) -> torch.Tensor:
    """One row per shape (colours rotating from row to row): the ground truth, then that combination's samples."""
    by_shape: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        by_shape.setdefault(spec.shape, []).append(i)
    rows = []
    for row, indices in enumerate(by_shape.values()):
        i = indices[row % len(indices)]
        cam = random_cameras(1, prior.image_size, 42.5, torch.Generator().manual_seed(i))
        rows += [ground_truth_views(specs[i].prompt, cam), images[i * views:(i + 1) * views]]
    return torch.cat(rows)


if __name__ == "__main__":
    main()
