"""4D benchmark (issue 22): "<colour> <shape> <motion>" prompts through the `4d` preset, judged against
the animated library.

    python bench/four_d.py --sample K --seed S [--config 4d] [--label tuning|report] [key=value ...]

Draws K prompts by seed, every motion at least once (motions taken in turn, shape and colour drawn
per prompt; white is left out, a white object on the white background has no silhouette). Each
prompt runs as its own `dreamer generate` process (training, export, eval), timed, with its peak
memory read from the kernel. The table has the 4D metrics of eval.json (mean per-frame silhouette
IoU, mean per-frame volume IoU, trajectory error, amplitude ratio, flicker), s/step and the total
time; "right" is the issue's target: trajectory error ≤ 0.05 and per-frame IoU ≥ 0.8. A picture,
docs/four-d-<label>.png, shows per prompt 8 frames from two views, ground truth above the result.
Runs already finished in the output folder are read back, so an interrupted benchmark resumes.

Draw the reported seed after tuning: a figure measured on the prompts it was tuned on says little.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from child import run_generate  # noqa: E402
from report import markdown_table, write_section  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
TARGET_TRAJECTORY = 0.05
TARGET_IOU = 0.8
TARGETS = ("Target (issue 22, `4d` preset with `reference-video`): every motion recognisably right — trajectory "
           "error ≤ 0.05 and per-frame IoU ≥ 0.8 — in ≤ 5 min per prompt on 2 cores.")


def draw_prompts(k: int, seed: int) -> list[str]:
    """K prompts, motions in turn (all six once K ≥ 6), shape and colour drawn by `seed`, no repeats."""
    from dreamer.shapes import COLOURS, OBJECTS
    from dreamer.shapes.motion import MOTIONS
    from dreamer.shapes.spec import with_article

    rng = random.Random(seed)
    motions = list(MOTIONS)
    rng.shuffle(motions)
    colours = [c for c in COLOURS if c != "white"]
    prompts: list[str] = []
    while len(prompts) < k:
        motion = motions[len(prompts) % len(motions)]
        prompt = f"{with_article(f'{rng.choice(colours)} {rng.choice(list(OBJECTS))}')} {motion}"
        if prompt not in prompts:
            prompts.append(prompt)
    return prompts


def run_one(prompt: str, folder: Path, config: str, overrides: list[str]) -> dict:
    """`dreamer generate` in a child process; {seconds, peak_mb, eval, steps} (read back when already done)."""
    record = folder / "bench.json"
    if record.exists() and (folder / "eval.json").exists():
        return json.loads(record.read_text())
    child = run_generate([prompt, "--config", config, "--out", str(folder), "--overwrite", "--quiet", *overrides])
    code = child.returncode
    eval_path = folder / "eval.json"
    ev = json.loads(eval_path.read_text()) if code == 0 and eval_path.exists() else None
    metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()] \
        if (folder / "metrics.jsonl").exists() else []
    train_s = metrics[-1]["elapsed_s"] if metrics else None
    result = {"prompt": prompt, "seconds": child.seconds, "train_seconds": train_s,
              "steps": metrics[-1]["step"] if metrics else 0, "peak_mb": child.peak_mb, "eval": ev, "returncode": code,
              "error": child.error}
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(result, indent=2))
    return result


def picture_block(run_dir: Path, frames: int = 8, size: int = 64) -> np.ndarray:
    """[4·size, frames·size, 3]: two views (front, right), ground truth above the result, frames left to right."""
    import torch

    from dreamer.cameras import clip_cameras, frame_times, from_spherical
    from dreamer.shapes.animated import render_motion
    from dreamer.shapes.prompt import parse_motion_prompt
    from dreamer.trainer.outputs import load_run

    config, representation, _ = load_run(run_dir, device="cpu")
    mspec = parse_motion_prompt(config.prompt)
    rows = []
    for azimuth in (0.0, 90.0):
        cams = clip_cameras(from_spherical(azimuth, 15.0, 2.8, 42.5, size), frame_times(frames))
        with torch.no_grad():
            predicted = representation.render(cams, background=torch.ones(3)).rgb
        truth = render_motion(mspec, cams).rgb
        for clip in (truth, predicted):
            rows.append(np.concatenate(list((clip.clamp(0, 1).numpy() * 255).round().astype(np.uint8)), axis=1))
    return np.concatenate(rows, axis=0)


def save_picture(blocks: list[tuple[str, np.ndarray]], path: Path) -> None:
    from PIL import Image, ImageDraw

    parts = []
    for prompt, block in blocks:
        label = Image.new("RGB", (block.shape[1], 16), "white")
        ImageDraw.Draw(label).text((4, 2), f"{prompt} — rows: front truth, front result, right truth, right result",
                                   fill="black")
        parts += [np.asarray(label), block]
    Image.fromarray(np.concatenate(parts, axis=0)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=8)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--config", default="4d")
    parser.add_argument("--label", default="report")
    parser.add_argument("--out", default="runs/bench-4d")
    parser.add_argument("--prompts", nargs="*", help="run these prompts instead of a draw (tuning)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every run")
    args = parser.parse_args()

    prompts = args.prompts or draw_prompts(args.sample, args.seed)
    root = Path(args.out) / f"{args.config}-{args.label}-{args.seed}"
    rows, blocks, results = [], [], []
    for prompt in prompts:
        folder = root / prompt.replace(" ", "-")
        result = run_one(prompt, folder, args.config, args.overrides)
        results.append(result)
        ev = result["eval"] or {}
        right = bool(ev) and ev["trajectory_error"] <= TARGET_TRAJECTORY and ev["mean_frame_iou"] >= TARGET_IOU
        ratio = ev.get("amplitude_ratio")
        s_step = result["train_seconds"] / result["steps"] if result["steps"] else float("nan")
        rows.append([prompt, ev.get("mean_frame_iou", 0.0), ev.get("mean_frame_volume_iou", 0.0),
                     ev.get("trajectory_error", float("nan")), "n/a" if ratio is None else round(ratio, 2),
                     round(ev.get("flicker", float("nan")), 4), round(s_step, 3), f"{result['seconds'] / 60:.1f}",
                     f"{result['peak_mb'] / 1024:.2f}", "yes" if right else "no"])
        print(" | ".join(map(str, rows[-1])), flush=True)
        if result["returncode"] == 0:
            blocks.append((prompt, picture_block(folder)))
    picture = DOCS / f"four-d-{args.config}-{args.label}.png"
    save_picture(blocks, picture)
    evs = [r["eval"] for r in results if r["eval"]]
    right = sum(row[-1] == "yes" for row in rows)
    summary = (f"{args.label} sample, seed {args.seed}: {right}/{len(rows)} prompts right; mean per-frame IoU "
               f"{np.mean([e['mean_frame_iou'] for e in evs]):.3f}, mean volume IoU "
               f"{np.mean([e['mean_frame_volume_iou'] for e in evs]):.3f}, mean trajectory error "
               f"{np.mean([e['trajectory_error'] for e in evs]):.3f}; total time per prompt "
               f"{min(r['seconds'] for r in results) / 60:.1f}–{max(r['seconds'] for r in results) / 60:.1f} min "
               f"(training, export, eval; one prompt at a time on this machine).")
    table = markdown_table(["prompt", "frame IoU", "volume IoU", "trajectory err", "amplitude ratio", "flicker",
                            "s/step", "total min", "peak GB", "right"], rows)
    body = f"{TARGETS}\n\n{summary}\n\n{table}\n\n![frames × views, truth above result]({picture.name})\n"
    command = f"python bench/four_d.py --sample {args.sample} --seed {args.seed} --config {args.config} --label {args.label}"
    if args.overrides:
        command += " " + " ".join(args.overrides)
    write_section(f"four-d-{args.config}-{args.label}", f"4D: {args.config} preset, {args.label} sample", body, command)
    print(summary)


if __name__ == "__main__":
    main()
