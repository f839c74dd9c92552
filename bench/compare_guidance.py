"""Every guidance rule × {reference, tiny} prior on the benchmark prompts (issue 4).

Each run is `dreamer generate` in a subprocess (so its peak memory is its own) with the rule's
CPU preset (`default` for SDS, `<paper preset>-tiny` for the others) and `--prior`; eval.json
gives IoU, colour error, R-precision and the multi-face rate (views that fit the opposite side's
ground truth better than their own). Finished runs are skipped, so the benchmark resumes.
Speed is measured apart from quality: `--timing-steps N` runs each rule × prior for N steps on
"a red cube" (no export, no eval) and reports seconds per optimisation step over steps 10…N from
metrics.jsonl plus the run's peak memory, so the quality runs may share the machine while the
timing pass should not. `--rescore` re-evaluates the finished runs (`dreamer eval`) instead of
training, keeping their times: for a change of evaluator. Writes the "Guidance comparison" section
of docs/benchmarks.md.
Usage: python bench/compare_guidance.py [--rules sds ism] [--priors tiny] [--prompts "a red chair"] [--steps N]
       [--timing-steps 60] [--rescore] [--finished-only] [--section NAME --title TEXT]
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
# The foundation benchmark's five, then three front-asymmetric objects (not a white mug: it would
# vanish against the white background of every CPU preset).
PROMPTS = ["a red cube", "a blue sphere", "a green torus", "a yellow cone", "an orange mushroom",
           "a brown chair", "a blue mug", "a red house"]
ASYMMETRIC = {"chair", "mug", "house"}
# The reference prior is the exact conditional denoiser of the library object: every rule uses it as
# the `reference` preset does (CFG 1, camera temperature 8°); SDS runs that preset itself.
REFERENCE_PRESETS = {"sds": "reference"}
REFERENCE_OVERRIDES = ("guidance.guidance_scale=1.0", "prior.camera_temperature=8.0")


def _generate(rule: str, prior: str, prompt: str, out: Path, steps: int | None, *extra: str) -> tuple[bool, float, float]:
    """Run `dreamer generate` in a subprocess: (succeeded, seconds, peak MB)."""
    import subprocess

    preset = REFERENCE_PRESETS.get(rule, PRESETS[rule]) if prior == "reference" else PRESETS[rule]
    if prior == "reference":
        extra = (*REFERENCE_OVERRIDES, *extra)
    cmd = [sys.executable, "-m", "dreamer", "generate", prompt, "--config", preset, "--prior", prior,
           "--out", str(out), "--quiet", "--overwrite", "export.video=false", "export.texture=false", *extra]
    if steps:
        cmd += ["--steps", str(steps)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    return status == 0, time.perf_counter() - start, usage.ru_maxrss / 1024


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def run(rule: str, prior: str, prompt: str, out: Path, steps: int | None, rescore: bool = False) -> dict:
    """eval.json of one run (+ seconds, peak MB), running it unless it is already there; `rescore`
    evaluates a finished run again (same weights, the current evaluator) and keeps its times."""
    record = out / "bench.json"
    if record.is_file():
        saved = json.loads(record.read_text())
        if rescore and not saved.get("failed"):
            import dreamer

            kept = {k: saved[k] for k in ("seconds", "peak_mb", "steps") if k in saved}
            saved = {**dreamer.evaluate(out), **kept}
            record.write_text(json.dumps(saved, indent=2))
        return saved
    ok, seconds, peak_mb = _generate(rule, prior, prompt, out, steps)
    if not ok:
        return {"failed": True, "seconds": seconds}
    ev = json.loads((out / "eval.json").read_text())
    metrics = _metrics(out)
    ev.update(seconds=seconds, peak_mb=peak_mb, steps=metrics[-1]["step"] if metrics else None)
    record.write_text(json.dumps(ev, indent=2))
    return ev


def timing(rule: str, prior: str, out: Path, steps: int) -> dict:
    """Seconds per optimisation step (steps 10…N, loading excluded) and peak MB of a short run."""
    record = out / "timing.json"
    if record.is_file():
        return json.loads(record.read_text())
    ok, _, peak_mb = _generate(rule, prior, "a red cube", out, steps, "trainer.log_every=10",
                               "trainer.preview_every=0", "trainer.evaluate=false", "export.mesh_resolution=32")
    if not ok:
        return {"failed": True}
    by_step = {m["step"]: m["elapsed_s"] for m in _metrics(out)}
    result = {"s_per_step": (by_step[steps] - by_step[10]) / (steps - 10), "peak_mb": peak_mb}
    record.write_text(json.dumps(result, indent=2))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rules", nargs="*", default=list(PRESETS))
    p.add_argument("--priors", nargs="*", default=["reference", "tiny"])
    p.add_argument("--prompts", nargs="*", default=PROMPTS)
    p.add_argument("--steps", type=int)
    p.add_argument("--timing-steps", type=int, help="also time each rule x prior over this many steps (>= 20)")
    p.add_argument("--out", default="runs/bench-guidance")
    p.add_argument("--rescore", action="store_true", help="evaluate the finished runs again instead of skipping them")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--section", default="compare-guidance",
                   help="docs/benchmarks.md section to write (another name keeps the main table as it is)")
    p.add_argument("--title", default="Guidance comparison")
    p.add_argument("--finished-only", action="store_true",
                   help="run nothing: table the rule x prior pairs whose runs are all finished, list the others as not run")
    args = p.parse_args()

    rows = []
    for prior in args.priors:
        for rule in args.rules:
            folders = [Path(args.out) / prior / rule / prompt.replace(" ", "-") for prompt in args.prompts]
            if args.finished_only and not all((f / "bench.json").is_file() for f in folders):
                rows.append([rule, prior, "not run", "", "", "", "", "", ""])
                continue
            results = []
            for prompt in args.prompts:
                out = Path(args.out) / prior / rule / prompt.replace(" ", "-")
                ev = run(rule, prior, prompt, out, args.steps, args.rescore)
                results.append((prompt, ev))
                if not ev.get("failed"):
                    print(f"{prior:>9} {rule:>4} {prompt:>20}: IoU {ev['iou']:.3f} colour {ev['colour_error']:.3f} "
                          f"R {ev['r_precision']:.2f} multi-face {ev['multi_face_rate']:.2f} {ev['seconds']:.0f} s",
                          flush=True)
            ok = [ev for _, ev in results if not ev.get("failed")]
            if not ok:
                rows.append([rule, prior, "failed", "", "", "", "", "", ""])
                continue
            asym = [ev for prompt, ev in results if not ev.get("failed") and prompt.split()[-1] in ASYMMETRIC]
            mean = lambda key, evs=ok: sum(e[key] for e in evs) / len(evs)  # noqa: E731
            speed = {"failed": True}
            if args.timing_steps:
                speed = timing(rule, prior, Path(args.out) / "timing" / prior / rule, args.timing_steps)
            rows.append([rule, prior, mean("iou"), mean("colour_error"), mean("r_precision"),
                         mean("multi_face_rate", asym) if asym else "—",
                         f"{speed['s_per_step']:.3f}" if "s_per_step" in speed else "—",
                         f"{speed['peak_mb']:.0f}" if "peak_mb" in speed else "—",
                         f"{sum(e['seconds'] for e in ok) / len(ok):.0f}"])
    table = markdown_table(["rule", "prior", "IoU", "colour error", "R-precision", "multi-face rate (chair, mug, house)",
                            "s/step", "peak MB", "s/run (shared machine)"], rows)
    print(table)
    if not args.no_write:
        body = (f"Prompts: {', '.join(args.prompts)}. Each rule runs its CPU preset (`default` for SDS, "
                f"`<paper preset>-tiny` otherwise) with the prior named; on the `reference` prior at CFG 1 and "
                f"camera temperature 8° as the `reference` preset (which SDS uses there). Multi-face rate: share of the 8 eval views "
                f"whose silhouette fits the ground truth of the opposite side better than its own (front/back "
                f"confusion), averaged over the front-asymmetric prompts.\n\n{table}")
        write_section(args.section, args.title, body,
                      "python bench/compare_guidance.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
