"""Several VSD particles against one (issue 4): quality of each particle, how far apart they end, cost.

For each prompt: VSD (`prolificdreamer-vsd-tiny`) with one particle at seeds 0 and 1 for S steps,
and with n particles at seed 0 for n·S steps, so that every particle gets S updates (training
renders go round-robin). Reported: mean IoU and R-precision over particles, the diversity — mean
absolute RGB difference between the renders of two assets at 8 turntable views over white, for
the n particles of one run and for the two one-particle runs of different seeds — and seconds per
update of one particle. Finished runs are skipped, so the benchmark resumes. Writes the "VSD
particles" section of docs/benchmarks.md.
Usage: python bench/vsd_particles.py [--particles 2] [--steps 300] [--prompts "a brown chair"] [--out DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import markdown_table, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRESET = "prolificdreamer-vsd-tiny"


def generate(prompt: str, out: Path, steps: int, seed: int, particles: int) -> float:
    """Run `dreamer generate` unless `out` already finished; returns its wall seconds (0 when skipped)."""
    if (out / "eval.json").exists():
        return 0.0
    cmd = [sys.executable, "-m", "dreamer", "generate", prompt, "--config", PRESET, "--out", str(out), "--quiet",
           "--overwrite", "--steps", str(steps), "--seed", str(seed), f"guidance.particles={particles}",
           "export.video=false", "export.texture=false"]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    return time.perf_counter() - start


@torch.no_grad()
def turntable_renders(run_dir: Path) -> list[torch.Tensor]:
    """[8, 64, 64, 3] renders over white of every particle of a run."""
    from dreamer.cameras import turntable
    from dreamer.representations.particles import particle_members
    from dreamer.trainer.outputs import load_run

    _, representation, _ = load_run(run_dir, device="cpu")
    cams = turntable(8, 64, 64, elevation=20.0)
    white = torch.ones(3)
    return [member.render(cams, background=white).rgb for member in particle_members(representation)]


def mean_pairwise_difference(renders: list[torch.Tensor]) -> float:
    pairs = list(itertools.combinations(renders, 2))
    return sum(float((a - b).abs().mean()) for a, b in pairs) / len(pairs)


def seconds_per_update(run_dir: Path) -> float:
    """Median seconds per step over the second half of the run (from metrics.jsonl, logged every few steps)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    half = rows[len(rows) // 2:]
    deltas = sorted((b["elapsed_s"] - a["elapsed_s"]) / (b["step"] - a["step"]) for a, b in zip(half, half[1:]))
    return deltas[len(deltas) // 2] if deltas else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300, help="updates per particle")
    parser.add_argument("--prompts", nargs="+", default=["a brown chair", "a red house"])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-vsd-particles")
    args = parser.parse_args()

    from dreamer.export.images import save_image, tile_row

    rows, sheet = [], []
    for prompt in args.prompts:
        slug = prompt.replace(" ", "-")
        single = [args.out / f"{slug}-1p-seed{seed}" for seed in (0, 1)]
        several = args.out / f"{slug}-{args.particles}p-seed0"
        for seed, run_dir in enumerate(single):
            generate(prompt, run_dir, args.steps, seed, 1)
        generate(prompt, several, args.particles * args.steps, 0, args.particles)
        single_renders = [turntable_renders(d)[0] for d in single]
        particle_renders = turntable_renders(several)
        sheet.extend(tile_row(r) for r in (*single_renders, *particle_renders))
        evaluation = json.loads((several / "eval.json").read_text())
        per_particle = evaluation["particles"]
        singles = [json.loads((d / "eval.json").read_text()) for d in single]
        rows.append({
            "prompt": prompt,
            "1 particle: IoU / R (2 seeds)": " / ".join(
                f"{sum(e[k] for e in singles) / 2:.3f}" for k in ("iou", "r_precision")),
            f"{args.particles} particles: IoU / R": " / ".join(
                f"{sum(e[k] for e in per_particle) / len(per_particle):.3f}" for k in ("iou", "r_precision")),
            "diversity, 2 seeds": f"{mean_pairwise_difference(single_renders):.4f}",
            f"diversity, {args.particles} particles": f"{mean_pairwise_difference(particle_renders):.4f}",
            "s/update, 1 / n particles": f"{seconds_per_update(single[0]):.3f} / {seconds_per_update(several):.3f}",
        })
        print(rows[-1], flush=True)
    table = markdown_table(list(rows[0]), [list(row.values()) for row in rows])
    print(table)
    command = (f"python bench/vsd_particles.py --particles {args.particles} --steps {args.steps} --prompts "
               + " ".join(f'"{p}"' for p in args.prompts))
    body = (f"`{PRESET}` (VSD, tiny prior, NeRF). One particle: seeds 0 and 1, {args.steps} steps each. "
            f"{args.particles} particles: seed 0, {args.particles * args.steps} steps (training renders go "
            f"round-robin, so each particle gets {args.steps} updates). IoU / R-precision: mean over the "
            "particles (eval.json). Diversity: mean absolute RGB difference between two assets' renders at "
            "8 turntable views (64 px, over white), averaged over pairs. s/update: median seconds per step "
            "over the second half of a run, from metrics.jsonl; one render per step in both cases, so "
            "differences are load, not method (these runs shared the 2 cores with other jobs).\n\n" + table)
    save_image(ROOT / "docs" / "vsd-particles.png", torch.cat(sheet, dim=0))
    body += (f"\n\n![VSD particles](vsd-particles.png)\n\nPer prompt, one row each: the one-particle runs at "
             f"seeds 0 and 1, then the {args.particles} particles of one run (8 turntable views each).")
    write_section("vsd-particles", "VSD particles", body, command)


if __name__ == "__main__":
    main()
