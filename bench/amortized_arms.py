"""ScaleDreamer's claim, controlled (issue 28 §4): SDS against ASD for one amortised generator.

    python bench/amortized_arms.py --prompts 16 --steps 300 --seeds 0 [--arms sds100,sds7.5,asd,asd0] [--label pilot]

Arms (every other setting equal, and every camera, t and ε drawn from the same (seed, step, prompt)):
  sds100  SDS, CFG 100          sds7.5  SDS, CFG 7.5
  asd     ASD, CFG 7.5, η 0.1   asd0    ASD, CFG 7.5, η 0 (ScaleDreamer's plus_ratio 0: the CFG term alone)
Held equal: the `default` preset's prior (tiny), cameras, render size and regularizers; one t schedule
t ~ U[0.02, t_max], t_max falling linearly 0.98 → 0.5 over the run (ScaleDreamer slides the lower bound
too, 0.5 → 0.02; SDS's schedule cannot, so both rules use the SDS-expressible one); the weighting σ/α
(the tiny presets'); Adam at `train.lr`; prompts per step.

Training prompts: K of the tiny prior's 158 trained colour × shape pairs, drawn by --draw-seed. Each
arm and seed trains in its own process (1 torch thread; `--parallel` at once). Evaluation per prompt,
on the seen prompts and the 18 held-out pairs: the generated NeRF's 8 eval renders (the evaluator's
top prompt) and its mesh at 64³ against the library mesh (volume IoU); success as the vocabulary
benchmark's (top prompt right in ≥ 5 of 8 views and volume IoU ≥ 0.6). Divergence: a non-finite
loss, or the last 10 % of logged losses above 10× the median of the first 10 %.
Writes docs/benchmarks.md, section `amortized-arms-<label>`, with the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import git_state  # noqa: E402
from report import markdown_table, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCHEDULE = {"sds": ["guidance.t_min=0.02", "guidance.t_max=0.98", "guidance.t_anneal=0.5", "guidance.t_anneal_by=1.0"],
            "asd": ["guidance.t_min_start=0.02", "guidance.t_min_end=0.02", "guidance.t_max_start=0.98",
                    "guidance.t_max_end=0.5", "guidance.anneal_by=1.0"]}
ARMS = {
    "sds100": ("sds", ["guidance.guidance_scale=100"]),
    "sds7.5": ("sds", ["guidance.guidance_scale=7.5"]),
    "asd": ("asd", ["guidance.guidance_scale=7.5", "guidance.eta=0.1"]),
    "asd0": ("asd", ["guidance.guidance_scale=7.5", "guidance.eta=0.0"]),
}


def train_arm(arm: str, seed: int, prompts_file: Path, out: Path, steps: int, batch: int,
              common: list[str]) -> subprocess.Popen:
    rule, extra = ARMS[arm]
    cmd = [sys.executable, "-m", "dreamer.amortized.train", "--out", str(out), "--guidance", rule, "--prompts",
           str(prompts_file), "--steps", str(steps), "--quiet", f"train.seed={seed}", f"train.batch_size={batch}",
           "train.log_every=5", "train.threads=1", "guidance.weighting=sigma_over_alpha", *SCHEDULE[rule], *extra,
           *common]
    log = open(out.parent / f"{out.name}.log", "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def divergence(metrics: list[dict], seen: list[dict]) -> str:
    """NaN/inf, "collapsed" (the late losses far above the early ones) or "emptied" (every seen prompt's
    asset empty at the end: the field gave up its density), else "no"."""
    if seen and all(r["volume_iou"] == 0.0 and r["right_views"] == 0 for r in seen):
        return "emptied"
    losses = [m["loss"] for m in metrics]
    if not losses:
        return "no log"
    if any(not (abs(v) < float("inf")) for v in losses):
        return "NaN/inf"
    k = max(1, len(losses) // 10)
    if statistics.mean(losses[-k:]) > 10 * statistics.median(losses[:k]):
        return "collapsed"
    return "no"


def evaluate(folder: Path, prompts: list[str]) -> list[dict]:
    import torch

    from dreamer.amortized.use import load_generator
    from dreamer.eval.geometry import geometry_metrics
    from dreamer.eval.metrics import evaluate_representation
    from dreamer.shapes import parse_prompt, spec_mesh

    loaded = load_generator(folder)
    rows = []
    for prompt in prompts:
        nerf = loaded.model.snapshot(loaded.planes([prompt])[0])
        ev = evaluate_representation(nerf, prompt, "cpu").to_dict()
        right = sum(p == prompt for p in ev["predicted_prompts"])
        mesh = nerf.to_mesh(64)
        viou = geometry_metrics(mesh, spec_mesh(parse_prompt(prompt))).volume_iou if len(mesh.faces) else 0.0
        rows.append({"prompt": prompt, "right_views": right, "volume_iou": float(viou),
                     "success": right >= 5 and viou >= 0.6})
        del nerf
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return rows


def summarise(rows: list[dict]) -> tuple[float, float]:
    return (sum(r["success"] for r in rows) / len(rows), sum(r["volume_iou"] for r in rows) / len(rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16, help="training prompts K (of the 158)")
    parser.add_argument("--draw-seed", type=int, default=0, help="which K prompts")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4, help="prompts per step")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--parallel", type=int, default=2, help="trainings at once (1 thread each)")
    parser.add_argument("--label", default="pilot")
    parser.add_argument("--out", default="runs/amortized-arms")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings for every arm (held equal)")
    args = parser.parse_args(argv)

    from dreamer.amortized.prompts import held_out_prompts, vocabulary_prompts

    state = git_state()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prompts = random.Random(args.draw_seed).sample(vocabulary_prompts(), args.prompts)
    prompts_file = out / "prompts.txt"
    prompts_file.write_text("\n".join(prompts) + "\n")
    held = held_out_prompts()
    jobs = [(arm, int(s)) for s in args.seeds.split(",") for arm in args.arms.split(",")]
    started, running, seconds = {}, {}, {}
    queue = list(jobs)
    while queue or running:
        while queue and len(running) < args.parallel:
            arm, seed = queue.pop(0)
            folder = out / f"{arm}-s{seed}"
            if (folder / "generator.pt").is_file() and json.loads((folder / "done.json").read_text()
                                                                 if (folder / "done.json").is_file() else "{}"):
                continue  # finished earlier (resumable bench)
            running[(arm, seed)] = train_arm(arm, seed, prompts_file, folder, args.steps, args.batch, args.overrides)
            started[(arm, seed)] = time.perf_counter()
        for key, proc in list(running.items()):
            if proc.poll() is not None:
                seconds[key] = time.perf_counter() - started[key]
                folder = out / f"{key[0]}-s{key[1]}"
                (folder / "done.json").write_text(json.dumps({"returncode": proc.returncode, "seconds": seconds[key]}))
                del running[key]
                print(f"trained {key[0]} seed {key[1]}: exit {proc.returncode}, {seconds[key]:.0f} s", flush=True)
        time.sleep(1)

    rows, details = [], []
    for arm, seed in jobs:
        folder = out / f"{arm}-s{seed}"
        done = json.loads((folder / "done.json").read_text())
        metrics = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()] \
            if (folder / "metrics.jsonl").is_file() else []
        seen = evaluate(folder, prompts) if done["returncode"] == 0 else []
        diverged = "NaN/inf" if done["returncode"] != 0 else divergence(metrics, seen)
        unseen = evaluate(folder, held) if done["returncode"] == 0 else []
        s_ok, s_iou = summarise(seen) if seen else (0.0, 0.0)
        h_ok, h_iou = summarise(unseen) if unseen else (0.0, 0.0)
        norms = [m["grad_norm"] for m in metrics]
        k = max(1, len(norms) // 10)
        trace = (f"{statistics.mean(norms[:k]):.3g} → {statistics.mean(norms[-k:]):.3g} (max {max(norms):.3g})"
                 if norms else "–")
        rows.append([arm, seed, f"{100 * s_ok:.0f} %", s_iou, f"{100 * h_ok:.0f} %", h_iou, diverged, trace,
                     f"{done['seconds']:.0f}"])
        details.append({"arm": arm, "seed": seed, "seen": seen, "held_out": unseen})
        print(f"{arm} seed {seed}: seen {s_ok:.2f}/{s_iou:.3f}, held-out {h_ok:.2f}/{h_iou:.3f}, diverged {diverged}",
              flush=True)
    (out / "results.json").write_text(json.dumps(details, indent=2))
    table = markdown_table(["arm", "seed", "seen success", "seen volume IoU", "held-out success",
                            "held-out volume IoU", "diverged", "grad norm (first 10 % → last 10 %)", "train s"], rows)
    body = (f"{state.describe()}. K = {args.prompts} training prompts (draw seed {args.draw_seed}: "
            f"{', '.join(prompts)}), {args.steps} steps × {args.batch} prompts per step "
            f"({args.steps * args.batch / args.prompts:.0f} renders per prompt), seeds {args.seeds}; "
            f"held-out: the 18 pairs never trained on. Settings held equal as in the script's docstring"
            f"{' and ' + ', '.join(args.overrides) if args.overrides else ''}; "
            f"1 torch thread per training, {args.parallel} at once.\n\n{table}\n")
    command = "python bench/amortized_arms.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_section(f"amortized-arms-{args.label}", f"Amortised generator: SDS against ASD ({args.label})", body, command)


if __name__ == "__main__":
    main()
