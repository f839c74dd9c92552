"""Every guidance rule × {reference, tiny} prior on the benchmark prompts (issue 4).

Each run is `dreamer generate` in a subprocess (so its peak memory is its own) with the rule's
CPU preset (`default` for SDS, `<paper preset>-tiny` for the others) and `--prior`; eval.json
gives IoU, colour error, R-precision and the multi-face rate (views that fit the opposite side's
ground truth better than their own). Finished runs are skipped, so the benchmark resumes.
Writes the "Guidance comparison" section of docs/benchmarks.md.
Usage: python bench/compare_guidance.py [--rules sds ism] [--priors tiny] [--prompts "a red chair"] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import markdown_table, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PRESETS = {"sds": "default", "vsd": "prolificdreamer-vsd-tiny", "esd": "esd-tiny", "ism": "lucid-ism-tiny",
           "tsm": "dreamerxl-tsm-tiny", "asd": "scaledreamer-asd-tiny"}
PROMPTS = ["a red cube", "a blue sphere", "a green torus", "a yellow cone", "an orange mushroom",
           "a brown chair", "a white mug", "a red house"]  # the last three are front-asymmetric
ASYMMETRIC = {"chair", "mug", "house"}


def run(rule: str, prior: str, prompt: str, out: Path, steps: int | None) -> dict:
    """eval.json of one run (+ seconds, peak MB), running it unless it is already there."""
    record = out / "bench.json"
    if record.is_file():
        return json.loads(record.read_text())
    cmd = [sys.executable, "-m", "dreamer", "generate", prompt, "--config", PRESETS[rule], "--prior", prior,
           "--out", str(out), "--quiet", "--overwrite", "export.video=false", "export.texture=false"]
    if steps:
        cmd += ["--steps", str(steps)]
    import subprocess

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        return {"failed": True, "seconds": seconds}
    ev = json.loads((out / "eval.json").read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    ev.update(seconds=seconds, peak_mb=usage.ru_maxrss / 1024, steps=metrics[-1]["step"] if metrics else None)
    record.write_text(json.dumps(ev, indent=2))
    return ev


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rules", nargs="*", default=list(PRESETS))
    p.add_argument("--priors", nargs="*", default=["reference", "tiny"])
    p.add_argument("--prompts", nargs="*", default=PROMPTS)
    p.add_argument("--steps", type=int)
    p.add_argument("--out", default="runs/bench-guidance")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()

    rows = []
    for prior in args.priors:
        for rule in args.rules:
            results = []
            for prompt in args.prompts:
                out = Path(args.out) / prior / rule / prompt.replace(" ", "-")
                ev = run(rule, prior, prompt, out, args.steps)
                results.append((prompt, ev))
                if not ev.get("failed"):
                    print(f"{prior:>9} {rule:>4} {prompt:>20}: IoU {ev['iou']:.3f} colour {ev['colour_error']:.3f} "
                          f"R {ev['r_precision']:.2f} multi-face {ev['multi_face_rate']:.2f} {ev['seconds']:.0f} s",
                          flush=True)
            ok = [ev for _, ev in results if not ev.get("failed")]
            if not ok:
                rows.append([rule, prior, "failed", "", "", "", "", ""])
                continue
            asym = [ev for prompt, ev in results if not ev.get("failed") and prompt.split()[-1] in ASYMMETRIC]
            mean = lambda key, evs=ok: sum(e[key] for e in evs) / len(evs)  # noqa: E731
            rows.append([rule, prior, mean("iou"), mean("colour_error"), mean("r_precision"),
                         mean("multi_face_rate", asym) if asym else "—",
                         f"{sum(e['seconds'] / e['steps'] for e in ok) / len(ok):.2f}",
                         f"{max(e['peak_mb'] for e in ok):.0f}"])
    table = markdown_table(["rule", "prior", "IoU", "colour error", "R-precision", "multi-face rate (chair, mug, house)",
                            "s/step (incl. export + eval)", "peak MB"], rows)
    print(table)
    if not args.no_write:
        body = (f"Prompts: {', '.join(args.prompts)}. Each rule runs its CPU preset (`default` for SDS, "
                f"`<paper preset>-tiny` otherwise) with the prior named. Multi-face rate: share of the 8 eval views "
                f"whose silhouette fits the ground truth of the opposite side better than its own (front/back "
                f"confusion), averaged over the front-asymmetric prompts.\n\n{table}")
        write_section("compare-guidance", "Guidance comparison", body,
                      "python bench/compare_guidance.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
