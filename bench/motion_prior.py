"""What the `tiny-motion` prior knows: colour, shape and motion accuracy of its sampled clips, load time, CFG cost.

    python bench/motion_prior.py [--weights assets/priors/tiny_motion] [--sample 24] [--seed S] [--views 2]
                                 [--steps 30] [--guidance 2] [--label L] [--fresh] [--no-write] [--cost-only]

Two sets of (colour, shape, motion) triples:
- trained: `--sample` triples drawn with `--seed` from those the prior trained on;
- held out: every triple of `dreamer.priors.tiny_motion.data.HELD_OUT_TRIPLES` (never trained on; each of
  its colours, shapes and motions was, with other partners).
Each triple is sampled as `--views` clips (`dreamer.priors.tiny_motion.sample.sample_clips`, cameras at random
azimuths, elevation 0–40°) and judged: colour and shape by the evaluator (dreamer.eval.classifier) on every
frame, the majority over the clip's frames; the motion by the motion judge (dreamer.eval.motion_classifier),
against the motion an image can show (a spin of a shape symmetric about its axis counts as still). The
ground-truth clips from the same cameras are judged alike: the judges' own ceiling on these views.
Writes a section of docs/benchmarks.md (with the commit and config; never overwrites one) and a contact
sheet (sample row, truth row per triple) next to it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import git_state  # noqa: E402
from report import DOC, markdown_table, refuse_existing, write_section  # noqa: E402

from dreamer.cameras import from_spherical  # noqa: E402
from dreamer.eval.classifier import default_evaluator  # noqa: E402
from dreamer.eval.motion_classifier import load_motion_judge, visible_motion  # noqa: E402
from dreamer.priors.tiny.sample import SamplerConfig, save_grid  # noqa: E402
from dreamer.priors.tiny_motion.data import HELD_OUT_TRIPLES, training_colours  # noqa: E402
from dreamer.priors.tiny_motion.prior import TinyMotionPrior, TinyMotionPriorConfig  # noqa: E402
from dreamer.priors.tiny_motion.sample import sample_clips, truth_clips  # noqa: E402
from dreamer.shapes import OBJECTS, ObjectSpec  # noqa: E402
from dreamer.shapes.motions import MOTIONS  # noqa: E402


def trained_triples(count: int, seed: int) -> list[tuple[str, str, str]]:
    """`count` distinct (colour, shape, motion) triples the prior trained on, drawn with `seed`."""
    pool = [(c, s, m) for s in OBJECTS for m in MOTIONS for c in training_colours(s, m)]
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed)).tolist()
    return [pool[i] for i in order[:count]]


def prompt(triple: tuple[str, str, str]) -> str:
    colour, shape, motion = triple
    return f"{ObjectSpec(shape, colour).prompt} {motion}"


def cameras(n: int, size: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return from_spherical(torch.rand(n, generator=gen) * 360, torch.rand(n, generator=gen) * 40, torch.full((n,), 2.8),
                          42.5, size, size)


def judge(clips: torch.Tensor, evaluator, motion_judge) -> list[tuple[str, str, str]]:
    """(colour, shape, motion) per clip [N, F, 3, S, S]: colour and shape by majority over the frames."""
    frames = clips.shape[1]
    pred = evaluator.predict(clips.flatten(0, 1))
    motions = motion_judge.predict(clips)
    out = []
    for k in range(len(clips)):
        colour = Counter(pred.colours[k * frames:(k + 1) * frames]).most_common(1)[0][0]
        shape = Counter(pred.shapes[k * frames:(k + 1) * frames]).most_common(1)[0][0]
        out.append((colour, shape, motions[k]))
    return out


def score(triples, judged) -> dict[str, float]:
    """Accuracy of colour, shape, motion and all three, over clips (triples repeated per view)."""
    right = {"colour": [], "shape": [], "motion": [], "all": []}
    for (colour, shape, motion), (c, s, m) in zip(triples, judged):
        expected = visible_motion(shape, motion)
        flags = (c == colour, s == shape, m == expected)
        for key, flag in zip(("colour", "shape", "motion"), flags):
            right[key].append(flag)
        right["all"].append(all(flags))
    return {k: sum(v) / len(v) for k, v in right.items()}


def confusion_table(triples, judged) -> str:
    """Markdown: the motion each clip should show (rows) against the motion the judge saw (columns)."""
    labels = ["still", *[m for m in MOTIONS if m != "still"]]
    counts = Counter((visible_motion(shape, motion), seen) for (_, shape, motion), (_, _, seen) in zip(triples, judged))
    rows = [[f"**{want}**", *[str(counts.get((want, seen), 0) or "·") for seen in labels]]
            for want in labels if any(counts.get((want, seen)) for seen in labels)]
    return markdown_table(["asked (visible) \\ judged", *labels], rows)


def weights_sha(folder: str) -> str:
    import hashlib

    from dreamer.resources import resolve_weights

    return hashlib.sha256((resolve_weights(folder) / "model.safetensors").read_bytes()).hexdigest()[:12]


def cfg_cost(prior, repeats: int = 5) -> float:
    """Median seconds of one CFG evaluation ([cond; uncond] in one call) of an 8-frame clip."""
    emb = prior.encode_prompt("a red cube bouncing")
    text = torch.cat([emb.cond, emb.uncond])
    x = torch.randn(2, 8, *prior.latent_shape)
    cams = cameras(1, prior.image_size, 0)
    from dreamer.cameras import clip_cameras

    clip_cams = clip_cameras(cams, torch.arange(8) / 8)
    prior.predict_noise(x, torch.tensor([500]), text, clip_cams)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        prior.predict_noise(x, torch.tensor([500]), text, clip_cams)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_set(name, triples, prior, views, sampler, seed, evaluator, motion_judge):
    from tqdm.auto import tqdm

    samples, truths, expanded = [], [], []
    for i, triple in enumerate(tqdm(triples, desc=f"sampling ({name})", unit="triple")):
        cams = cameras(views, prior.image_size, seed + i)
        samples.append(sample_clips(prior, prompt(triple), cams, sampler=sampler, seed=seed + i))
        truths.append(truth_clips(prompt(triple), cams, prior.num_frames))
        expanded += [triple] * views
    samples, truths = torch.cat(samples), torch.cat(truths)
    judged = judge(samples, evaluator, motion_judge)
    return (score(expanded, judged), score(expanded, judge(truths, evaluator, motion_judge)), samples, truths,
            (expanded, judged))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="assets/priors/tiny_motion")
    p.add_argument("--sample", type=int, default=24, help="trained triples to draw")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--views", type=int, default=2, help="clips per triple")
    p.add_argument("--steps", type=int, default=30, help="DDIM steps")
    p.add_argument("--guidance", type=float, default=2.0)
    p.add_argument("--label", default="check", help="section label, e.g. tuning or report")
    p.add_argument("--fresh", action="store_true", help="the seed was drawn after the last change to the prior")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--cost-only", action="store_true", help="print the load time and the CFG cost only (no sampling)")
    args = p.parse_args()
    if args.cost_only:
        t0 = time.perf_counter()
        prior = TinyMotionPrior(TinyMotionPriorConfig(weights=args.weights))
        load_seconds = time.perf_counter() - t0
        print(f"{git_state().describe()}: load {load_seconds:.1f} s, one CFG evaluation of an 8-frame clip "
              f"{cfg_cost(prior) * 1000:.0f} ms (median of 5, {torch.get_num_threads()} threads)")
        return

    name = f"motion-prior-{args.label}-s{args.seed}"
    if not args.no_write:
        refuse_existing(name)
    state = git_state()  # before anything is written: the contact sheet itself would make the tree dirty
    t0 = time.perf_counter()
    prior = TinyMotionPrior(TinyMotionPriorConfig(weights=args.weights))
    load_seconds = time.perf_counter() - t0
    cost = cfg_cost(prior)
    sampler = SamplerConfig(steps=args.steps, guidance=args.guidance)
    evaluator, motion_judge = default_evaluator(), load_motion_judge()
    sets = {"trained": trained_triples(args.sample, args.seed), "held out": list(HELD_OUT_TRIPLES)}
    rows, sheets, asked, seen = [], [], [], []
    for index, (set_name, triples) in enumerate(sets.items()):
        got, ceiling, samples, truths, (expanded, judged) = run_set(set_name, triples, prior, args.views, sampler,
                                                args.seed * 1000 + index * 100, evaluator, motion_judge)
        rows.append([set_name, len(triples), f"{got['colour']:.2f}", f"{got['shape']:.2f}", f"{got['motion']:.2f}",
                     f"{got['all']:.2f}", f"{ceiling['motion']:.2f}", f"{ceiling['all']:.2f}"])
        print(rows[-1], flush=True)
        asked += expanded
        seen += judged
        sheets.append(torch.stack([samples, truths], dim=1).flatten(0, 1))  # sample row, truth row, per clip
    table = markdown_table(["triples", "count", "colour", "shape", "motion", "all three",
                            "motion (truth clips)", "all three (truth clips)"], rows)
    print(table)
    confusion = confusion_table(asked, seen)
    print(confusion)
    print(f"load {load_seconds:.1f} s, one CFG evaluation of an 8-frame clip {cost * 1000:.0f} ms")
    if args.no_write:
        return
    sheet = DOC.parent / f"{name}.png"
    grid = torch.cat(sheets)[: 2 * args.views * 12]  # the first triples of the trained set, as pictures
    save_grid(grid.flatten(0, 1), sheet, columns=prior.num_frames, scale=2)
    body = "\n".join([
        f"{state.describe()} · weights `{args.weights}` (model.safetensors sha256 {weights_sha(args.weights)}) · "
        f"{'fresh sample, drawn after the last change to the prior' if args.fresh else 'not a fresh sample'}",
        "",
        f"{args.views} sampled clips per triple, {args.steps} DDIM steps, CFG {args.guidance}; colour and shape by the "
        "evaluator (majority over the frames), motion by the motion judge against the motion an image can show. "
        "The truth columns judge the library's own clips from the same cameras (the judges' ceiling).",
        "",
        table,
        "",
        "Motion of the sampled clips, both sets: what the prompt asked for (as an image can show it) against what "
        "the judge saw.",
        "",
        confusion,
        "",
        f"Load time {load_seconds:.1f} s; one CFG evaluation of an 8-frame 32 px clip {cost * 1000:.0f} ms "
        f"(median of 5, {torch.get_num_threads()} threads).",
        "",
        f"![samples and truth]({sheet.name}) — each pair of rows: a sampled clip, then the truth from its camera "
        "(frames across; trained triples).",
    ])
    write_section(name, f"tiny-motion prior: samples judged ({args.label}, seed {args.seed})", body,
                  "python bench/motion_prior.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
