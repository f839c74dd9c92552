"""ScaleDreamer's claim, controlled (issue 28 §4): SDS against ASD for one amortised generator.

    python bench/amortized_arms.py --prompts 16,158 --steps 600 --seeds 0,1 [--arms sds100,sds7.5,asd,asd0] [--label table]

Arms (every other setting equal, and every camera, t and ε drawn from the same (seed, step, prompt)):
  sds100  SDS, CFG 100          sds7.5  SDS, CFG 7.5
  asd     ASD, CFG 7.5, η 0.1   asd0    ASD, CFG 7.5, η 0 (ScaleDreamer's plus_ratio 0: the CFG term alone)
Held equal: the `sds-tiny` preset's prior (tiny; the default before issue 27's fourth report), cameras, render size and regularizers; one t schedule
t ~ U[0.02, t_max], t_max falling linearly 0.98 → 0.5 over the run (ScaleDreamer slides the lower bound
too, 0.5 → 0.02; SDS's schedule cannot, so both rules use the SDS-expressible one); the weighting σ/α
(the tiny presets'); Adam at `train.lr`; prompts per step, and so the compute: a run on 158 prompts
takes as many steps as one on 16, and sees each prompt about 10× less often.

Training prompts: for each size K in --prompts, K of the tiny prior's 158 trained colour × shape pairs
drawn by --draw-seed; the smallest set is contained in every larger one. Each (arm, K, seed) job trains
and then evaluates in its own process (1 torch thread; `--parallel` at once); a finished job is skipped
when the bench runs again. Evaluation, the same for every job:
  seen        the smallest set's prompts (trained on by every job);
  held-out    the 18 pairs never trained on;
  paraphrase  the seen prompts reworded by the prior's paraphrase templates (one each, cycled).
Per prompt: the generated NeRF's 8 eval renders (the evaluator's top prompt, judged against the
canonical prompt) and its mesh at 64³ against the library mesh (volume IoU); success as the vocabulary
benchmark's (top prompt right in ≥ 5 of 8 views and volume IoU ≥ 0.6). Divergence: a non-finite loss,
the last 10 % of logged losses above 10× the median of the first 10 %, or every seen asset empty.
Writes docs/benchmarks.md, section `amortized-arms-<label>`, with the commit, a gradient-norm plot and
a contact sheet of held-out results (docs/amortized-arms-<label>-*.png).

    python bench/amortized_arms.py --evaluate GENERATOR_DIR [--eval-prompts 16] [--device cuda]

evaluates one trained generator (bench/amortized_gpu.sh's) the same way: seen = --eval-prompts of its
own training prompts (drawn by --draw-seed), held-out, paraphrase; prints the table and writes
eval.json into the folder (not the docs: copy the printed table by hand, naming the card).
"""

from __future__ import annotations

import argparse
import json
import math
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
DOCS = ROOT / "docs"
SCHEDULE = {"sds": ["guidance.t_min=0.02", "guidance.t_max=0.98", "guidance.t_anneal=0.5", "guidance.t_anneal_by=1.0"],
            "asd": ["guidance.t_min_start=0.02", "guidance.t_min_end=0.02", "guidance.t_max_start=0.98",
                    "guidance.t_max_end=0.5", "guidance.anneal_by=1.0"]}
ARMS = {
    "sds100": ("sds", ["guidance.guidance_scale=100"]),
    "sds7.5": ("sds", ["guidance.guidance_scale=7.5"]),
    "asd": ("asd", ["guidance.guidance_scale=7.5", "guidance.eta=0.1"]),
    "asd0": ("asd", ["guidance.guidance_scale=7.5", "guidance.eta=0.0"]),
}
ARM_COLOURS = {"sds100": (214, 39, 40), "sds7.5": (255, 127, 14), "asd": (31, 119, 180), "asd0": (44, 160, 44)}
SHEET_VIEW = 1  # the eval turntable's view shown in the contact sheet (45° from the front)


def paraphrases(prompts: list[str]) -> dict[str, str]:
    """{reworded prompt: canonical prompt}: the prior's paraphrase templates, one per prompt, cycled."""
    from dreamer.priors.tiny.captions import PARAPHRASE_TEMPLATES, _fill
    from dreamer.shapes import parse_prompt

    out = {}
    for i, prompt in enumerate(prompts):
        spec = parse_prompt(prompt)
        out[_fill(PARAPHRASE_TEMPLATES[i % len(PARAPHRASE_TEMPLATES)], spec.colour, spec.shape)] = prompt
    return out


def train_command(arm: str, seed: int, prompts_file: Path, folder: Path, steps: int, batch: int,
                  common: list[str]) -> list[str]:
    rule, extra = ARMS[arm]
    return [sys.executable, "-m", "dreamer.amortized.train", "--out", str(folder), "--guidance", rule, "--prompts",
            str(prompts_file), "--steps", str(steps), "--quiet", f"train.seed={seed}", f"train.batch_size={batch}",
            "train.log_every=5", "train.threads=1", "guidance.weighting=sigma_over_alpha", *SCHEDULE[rule], *extra,
            *common]


def run_job(job_file: Path) -> None:
    """One (arm, K, seed): train (resumable), then evaluate; writes done.json and eval.json beside it."""
    job = json.loads(job_file.read_text())
    folder = Path(job["folder"])
    started = time.perf_counter()
    if not (folder / "train-done.json").is_file():
        resume = ["--resume"] if (folder / "checkpoints" / "last.pt").is_file() else []
        result = subprocess.run(job["command"] + resume, stdout=open(folder.parent / f"{folder.name}.log", "a"),
                                stderr=subprocess.STDOUT)
        (folder / "train-done.json").write_text(json.dumps(
            {"returncode": result.returncode, "seconds": time.perf_counter() - started}))
    trained = json.loads((folder / "train-done.json").read_text())
    started = time.perf_counter()
    evaluation = evaluate(folder, job["sets"]) if trained["returncode"] == 0 else {}
    (folder / "eval.json").write_text(json.dumps({**evaluation, "seconds": time.perf_counter() - started}))


def evaluate(folder: Path, sets: dict[str, dict[str, str]], device: str = "cpu") -> dict[str, list[dict]]:
    """{set name: per-prompt rows} for sets {name: {prompt given to the generator: canonical prompt}}."""
    import numpy as np
    import torch
    from PIL import Image

    from dreamer.amortized.use import load_generator
    from dreamer.eval.geometry import geometry_metrics
    from dreamer.eval.metrics import eval_cameras, evaluate_representation
    from dreamer.shapes import parse_prompt, spec_mesh

    if device == "cpu":
        torch.set_num_threads(1)
    loaded = load_generator(folder, device)
    view = eval_cameras()[SHEET_VIEW].to(device)
    tiles = folder / "tiles"
    tiles.mkdir(exist_ok=True)
    out = {}
    for name, prompts in sets.items():
        rows = []
        for given, canonical in prompts.items():
            with torch.no_grad():
                nerf = loaded.model.snapshot(loaded.planes([given])[0])
            ev = evaluate_representation(nerf, canonical, device).to_dict()
            right = sum(p == canonical for p in ev["predicted_prompts"])
            mesh = nerf.to_mesh(64)
            viou = geometry_metrics(mesh, spec_mesh(parse_prompt(canonical))).volume_iou if len(mesh.faces) else 0.0
            with torch.no_grad():
                rgb = nerf.render(view, background=torch.ones(3, device=device)).rgb[0].clamp(0, 1).cpu()
            tile = f"{name}-{len(rows):02d}.png"
            Image.fromarray((rgb.numpy() * 255).round().astype(np.uint8)).save(tiles / tile)
            rows.append({"prompt": given, "canonical": canonical, "right_views": right, "volume_iou": float(viou),
                         "success": right >= 5 and viou >= 0.6, "tile": tile})
        out[name] = rows
    return out


def divergence(metrics: list[dict], seen: list[dict]) -> str:
    """NaN/inf, "collapsed" (the late losses far above the early ones) or "emptied" (every seen prompt's
    asset empty at the end: the field gave up its density), else "no"."""
    if seen and all(r["volume_iou"] == 0.0 and r["right_views"] == 0 for r in seen):
        return "emptied"
    losses = [m["loss"] for m in metrics]
    if not losses:
        return "no log"
    if any(not math.isfinite(v) for v in losses):
        return "NaN/inf"
    k = max(1, len(losses) // 10)
    if statistics.mean(losses[-k:]) > 10 * statistics.median(losses[:k]):
        return "collapsed"
    return "no"


def summarise(rows: list[dict]) -> tuple[float, float]:
    return (sum(r["success"] for r in rows) / len(rows), sum(r["volume_iou"] for r in rows) / len(rows)) if rows \
        else (0.0, 0.0)


def grad_norm_plot(traces: dict[str, list[tuple[int, float]]], out: Path, width: int = 720, height: int = 360,
                   window: int = 8) -> Path:
    """A log-scale plot of gradient norm against step, one line per job (colour = arm; a running mean of
    `window` logged values in log space, so the trend shows through the per-step noise), as PNG."""
    from PIL import Image, ImageDraw

    points = [(s, v) for trace in traces.values() for s, v in trace if v > 0 and math.isfinite(v)]
    lo, hi = math.log10(min(v for _, v in points)), math.log10(max(v for _, v in points))
    last = max(s for s, _ in points)
    smallest = min(int(label.split()[1][1:]) for label in traces)  # labels "arm K<k> s<seed>"
    left, right, top, bottom = 60, width - 150, 20, height - 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([left, top, right, bottom], outline="black")
    for decade in range(math.floor(lo), math.ceil(hi) + 1):
        y = bottom - (decade - lo) / max(hi - lo, 1e-9) * (bottom - top)
        if top <= y <= bottom:
            draw.line([left, y, right, y], fill=(225, 225, 225))
            draw.text((8, y - 6), f"1e{decade}", fill="black")
    draw.text((left, bottom + 8), "0", fill="black")
    draw.text((right - 30, bottom + 8), f"step {last}", fill="black")
    draw.text((left + 4, top + 4), f"gradient norm (log; running mean of {window} logs)", fill="black")
    for i, (label, trace) in enumerate(traces.items()):
        colour = ARM_COLOURS[label.split()[0]]
        kept = [(s, math.log10(v)) for s, v in trace if v > 0 and math.isfinite(v)]
        smooth = [(s, statistics.mean(y for _, y in kept[max(0, j - window + 1):j + 1])) for j, (s, _) in enumerate(kept)]
        xy = [(left + s / last * (right - left), bottom - (y - lo) / max(hi - lo, 1e-9) * (bottom - top))
              for s, y in smooth]
        draw.line(xy, fill=colour, width=1 if int(label.split()[1][1:]) == smallest else 2)
        draw.text((right + 8, top + 14 * i), label, fill=colour)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out


def contact_sheet(folders: dict[str, Path], rows_by_job: dict[str, list[dict]], out: Path) -> Path:
    """Rows: jobs; columns: the held-out prompts' tiles (view SHEET_VIEW); a header row names them."""
    import numpy as np
    from PIL import Image, ImageDraw

    label_width, size = 150, 128
    first = next(iter(rows_by_job.values()))
    header = Image.new("RGB", (label_width + size * len(first), 28), "white")
    draw = ImageDraw.Draw(header)
    for i, row in enumerate(first):
        words = row["canonical"].split()[-2:]
        draw.text((label_width + i * size + 4, 2), words[0], fill="black")
        draw.text((label_width + i * size + 4, 14), words[1], fill="black")
    stack = [np.asarray(header)]
    for job, rows in rows_by_job.items():
        text = Image.new("RGB", (label_width, size), "white")
        ImageDraw.Draw(text).text((6, size // 2 - 6), job, fill="black")
        tiles = [np.asarray(Image.open(folders[job] / "tiles" / r["tile"]).convert("RGB").resize((size, size)))
                 for r in rows]
        stack.append(np.concatenate([np.asarray(text), *tiles], axis=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(stack, axis=0)).save(out)
    return out


def evaluate_one(folder: Path, count: int, draw_seed: int, device: str) -> None:
    """The --evaluate mode: one trained generator on its own seen prompts, the held-out pairs, paraphrases."""
    import torch

    from dreamer.amortized.prompts import held_out_prompts

    trained = torch.load(folder / "generator.pt", map_location="cpu", weights_only=True).get("prompts", [])
    seen = random.Random(draw_seed).sample(trained, min(count, len(trained)))
    sets = {"seen": {p: p for p in seen}, "held-out": {p: p for p in held_out_prompts()},
            "paraphrase": paraphrases(seen)}
    started = time.perf_counter()
    evaluation = evaluate(folder, sets, device)
    (folder / "eval.json").write_text(json.dumps(evaluation, indent=2))
    rows = [[name, len(evaluation[name]), f"{100 * summarise(evaluation[name])[0]:.0f} %",
             summarise(evaluation[name])[1]] for name in sets]
    print(markdown_table(["set", "prompts", "success", "volume IoU"], rows))
    print(f"{len(trained)} training prompts; evaluated in {time.perf_counter() - started:.0f} s on {device}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", default="16", help="comma-separated training-set sizes K (each ≤ 158)")
    parser.add_argument("--draw-seed", type=int, default=0, help="which prompts")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4, help="prompts per step")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--parallel", type=int, default=2, help="jobs at once (1 thread each)")
    parser.add_argument("--label", default="pilot")
    parser.add_argument("--out", default="runs/amortized-arms")
    parser.add_argument("--job", type=Path, help=argparse.SUPPRESS)  # internal: run one job file
    parser.add_argument("--evaluate", type=Path, metavar="GENERATOR_DIR", help="evaluate one trained generator")
    parser.add_argument("--eval-prompts", type=int, default=16, help="--evaluate: seen prompts to evaluate")
    parser.add_argument("--device", default="cpu", help="--evaluate: cpu or cuda")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings for every arm (held equal)")
    args = parser.parse_args(argv)
    if args.job:
        return run_job(args.job)
    if args.evaluate:
        return evaluate_one(args.evaluate, args.eval_prompts, args.draw_seed, args.device)

    from dreamer.amortized.prompts import held_out_prompts, vocabulary_prompts

    state = git_state()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = sorted(int(k) for k in args.prompts.split(","))
    order = random.Random(args.draw_seed).sample(vocabulary_prompts(), max(sizes))
    seen = order[:sizes[0]]
    sets = {"seen": {p: p for p in seen}, "held-out": {p: p for p in held_out_prompts()},
            "paraphrase": paraphrases(seen)}
    jobs = []
    for k in sizes:
        prompts_file = out / f"prompts-{k}.txt"
        prompts_file.write_text("\n".join(order[:k]) + "\n")
        for seed in (int(s) for s in args.seeds.split(",")):
            for arm in args.arms.split(","):
                folder = out / f"{arm}-k{k}-s{seed}"
                folder.mkdir(exist_ok=True)
                job_file = folder / "job.json"
                job_file.write_text(json.dumps({"folder": str(folder), "sets": sets, "command": train_command(
                    arm, seed, prompts_file, folder, args.steps, args.batch, args.overrides)}))
                jobs.append((arm, k, seed, folder, job_file))

    queue = [j for j in jobs if not (j[3] / "eval.json").is_file()]
    running: dict[Path, subprocess.Popen] = {}
    total, bench_start = len(queue), time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    while queue or running:
        while queue and len(running) < args.parallel:
            arm, k, seed, folder, job_file = queue.pop(0)
            running[folder] = subprocess.Popen([sys.executable, __file__, "--job", str(job_file)], env=env)
        for folder, proc in list(running.items()):
            if proc.poll() is not None:
                del running[folder]
                done = total - len(queue) - len(running)
                elapsed = time.perf_counter() - bench_start
                eta = elapsed / done * (total - done)
                print(f"[{done}/{total}] {folder.name}: exit {proc.returncode}; {elapsed / 60:.0f} min, "
                      f"ETA {eta / 60:.0f} min", flush=True)
        time.sleep(2)

    rows, details, traces, folders, held_rows = [], [], {}, {}, {}
    for arm, k, seed, folder, _ in jobs:
        trained = json.loads((folder / "train-done.json").read_text())
        evaluation = json.loads((folder / "eval.json").read_text())
        metrics = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()] \
            if (folder / "metrics.jsonl").is_file() else []
        seen_rows = evaluation.get("seen", [])
        # exit 1 is the trainer's TrainingDiverged (a non-finite loss); any other failure is named as such
        diverged = divergence(metrics, seen_rows) if trained["returncode"] == 0 else \
            "NaN/inf" if trained["returncode"] == 1 else f"failed (exit {trained['returncode']})"
        figures = {name: summarise(evaluation.get(name, [])) for name in sets}
        norms = [m["grad_norm"] for m in metrics]
        n = max(1, len(norms) // 10)
        trace = (f"{statistics.mean(norms[:n]):.3g} → {statistics.mean(norms[-n:]):.3g} (max {max(norms):.3g})"
                 if norms else "–")
        rows.append([arm, k, seed, *[cell for name in sets for cell in
                                     (f"{100 * figures[name][0]:.0f} %", figures[name][1])],
                     diverged, trace, f"{trained['seconds']:.0f}"])
        name = f"{arm} K{k} s{seed}"
        traces[name] = [(m["step"], m["grad_norm"]) for m in metrics]
        folders[name] = folder
        if evaluation.get("held-out"):
            held_rows[name] = evaluation["held-out"]
        details.append({"arm": arm, "prompts": k, "seed": seed, **evaluation})
        print(f"{name}: " + ", ".join(f"{s} {figures[s][0]:.2f}/{figures[s][1]:.3f}" for s in sets)
              + f", diverged {diverged}", flush=True)
    (out / "results.json").write_text(json.dumps(details, indent=2))

    mean_rows = []
    for arm in args.arms.split(","):
        for k in sizes:
            mine = [d for d in details if d["arm"] == arm and d["prompts"] == k]
            cells = []
            for name in sets:
                pairs = [summarise(d.get(name, [])) for d in mine]
                cells += [f"{100 * statistics.mean(p[0] for p in pairs):.0f} %", statistics.mean(p[1] for p in pairs)]
            mean_rows.append([arm, k, len(mine), *cells])
    plot = grad_norm_plot(traces, DOCS / f"amortized-arms-{args.label}-grad-norms.png")
    sheet = contact_sheet(folders, held_rows, DOCS / f"amortized-arms-{args.label}-held-out.png")
    per_set = [c for name in sets for c in (f"{name} success", f"{name} volume IoU")]
    table = markdown_table(["arm", "K", "seed", *per_set, "diverged", "grad norm (first 10 % → last 10 %)",
                            "train s"], rows)
    means = markdown_table(["arm", "K", "seeds", *per_set], mean_rows)
    body = (f"{state.describe()}. Training sets K ∈ {{{', '.join(map(str, sizes))}}} of the 158 trained pairs "
            f"(draw seed {args.draw_seed}; the K = {sizes[0]} set: {', '.join(seen)}), {args.steps} steps × "
            f"{args.batch} prompts per step for every K, seeds {args.seeds}. Evaluated on: seen = the K = {sizes[0]} "
            f"set (every job trained on it), held-out = the 18 pairs no job trained on, paraphrase = the seen "
            f"prompts reworded ({', '.join(list(sets['paraphrase'])[:3])}, …). Settings held equal as in the "
            f"script's docstring{' and ' + ', '.join(args.overrides) if args.overrides else ''}; 1 torch thread "
            f"per job, {args.parallel} at once.\n\nMeans over seeds:\n\n{means}\n\nEvery job:\n\n{table}\n\n"
            f"Gradient norms (colour = arm; thin: K = {sizes[0]}, thick: larger K):\n\n![gradient norms]({plot.name})\n\n"
            f"Held-out pairs, view {SHEET_VIEW} of the eval turntable:\n\n![held-out]({sheet.name})\n")
    command = "python bench/amortized_arms.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_section(f"amortized-arms-{args.label}", f"Amortised generator: SDS against ASD ({args.label})", body, command)


if __name__ == "__main__":
    main()
