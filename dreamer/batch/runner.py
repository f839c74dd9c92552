"""`dreamer batch`: every prompt of a file is a Ray task running `dreamer.generate` (dreamer.batch.task).

With no address it starts a local Ray on this machine (`--parallel` tasks at once, each with
`--threads` CPU threads); with `--address` it joins a running cluster. A task whose worker dies (killed,
out of memory, a node lost) is retried by Ray and resumes from its checkpoint; prompts that finished
earlier are skipped. `batch.json` (each prompt's status, figures and folder) is rewritten after every
result, so an interrupted batch leaves a true record, and a contact sheet goes beside it. A prompt
that finds the disk full stops the batch (DiskFull, exit 28): the prompts after it would fail too.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from dreamer.batch.task import PromptResult, run_prompt
from dreamer.errors import DiskFull, UserError
from dreamer.io import atomic_write_text

TASK_RETRIES = 3  # Ray re-runs a task whose worker died this many times


@dataclass
class BatchSummary:
    out: Path
    results: list[PromptResult]
    seconds: float
    sheet: Path | None

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)


def read_prompts(path: Path | str) -> list[str]:
    """One prompt per line; blank lines and lines starting with # are skipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"prompt file '{path}' does not exist: give a text file with one prompt per line")
    prompts = [line.strip() for line in path.read_text().splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise UserError(f"prompt file '{path}' holds no prompt (one per line; # starts a comment)")
    return prompts


def run_folder_name(index: int, prompt: str) -> str:
    from dreamer.api import slugify

    return f"{index:04d}-{slugify(prompt)}"


def _start_ray(address: str | None, parallel: int, threads: int, gpus: bool):
    import ray

    if ray.is_initialized():
        return ray
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=parallel * threads, num_gpus=None if gpus else 0, include_dashboard=False,
                 log_to_driver=False)
    return ray


def run_batch(prompts_file: Path | str, out: Path | str, *, address: str | None = None, parallel: int = 1,
              threads: int = 1, config: str = "default", dotted: list[str] | None = None, gpus_per_task: float = 0.0,
              progress: bool = True) -> BatchSummary:
    """Run every prompt of `prompts_file` into `out/<index>-<slug>/`; write `out/batch.json` and the sheet."""
    from dreamer.api import resolve_config

    if parallel < 1 or threads < 1:
        raise UserError("--parallel and --threads must be at least 1")
    prompts = read_prompts(prompts_file)
    dotted = list(dotted or [])
    resolve_config(prompts[0], config, dotted).validate()  # a bad preset or key fails before Ray starts
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ray = _start_ray(address, parallel, threads, gpus_per_task > 0)
    task = ray.remote(run_prompt).options(num_cpus=threads, num_gpus=gpus_per_task, max_retries=TASK_RETRIES,
                                          retry_exceptions=False)
    began = time.perf_counter()
    results: dict[int, PromptResult] = {}
    queue = list(enumerate(prompts))
    running: dict = {}
    bar = _bar(len(prompts), progress)
    try:
        while queue or running:
            while queue and len(running) < parallel:  # at most `parallel` in flight (also on a cluster)
                index, prompt = queue.pop(0)
                folder = out / run_folder_name(index, prompt)
                running[task.remote(index, prompt, str(folder), config, dotted, threads)] = (index, prompt, folder)
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                index, prompt, folder = running.pop(ref)
                results[index] = _collect(ray, ref, index, prompt, folder)
                _write_json(out, prompts, results, time.perf_counter() - began)
                if results[index].disk_full:  # stop: every prompt after it would fail the same way
                    for pending in running:
                        ray.cancel(pending, force=True)
                    raise DiskFull(results[index].error)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(failed=sum(r.status == "failed" for r in results.values()))
    finally:
        if bar is not None:
            bar.close()
    ordered = [results[i] for i in sorted(results)]
    from dreamer.batch.sheet import write_contact_sheet

    sheet = write_contact_sheet(ordered, out / "batch.png")
    _write_json(out, prompts, results, time.perf_counter() - began, sheet)
    return BatchSummary(out, ordered, time.perf_counter() - began, sheet)


def _collect(ray, ref, index: int, prompt: str, folder: Path) -> PromptResult:
    try:
        return ray.get(ref)
    except Exception as e:  # noqa: BLE001 - a task that failed every retry (its worker kept dying) or a bug
        cause = getattr(e, "cause", None) or e
        line = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
        return PromptResult(index, prompt, "failed", str(folder), error=f"{type(cause).__name__}: {line}"[:300])


def _write_json(out: Path, prompts: list[str], results: dict[int, PromptResult], seconds: float,
                sheet: Path | None = None) -> None:
    data = {
        "prompts": len(prompts),
        "finished": sum(r.status in ("finished", "skipped") for r in results.values()),
        "failed": sum(r.status == "failed" for r in results.values()),
        "pending": len(prompts) - len(results),
        "seconds": round(seconds, 1),
        "contact_sheet": sheet.name if sheet else None,
        "results": [asdict(results[i]) for i in sorted(results)],
    }
    atomic_write_text(out / "batch.json", json.dumps(data, indent=2))


def _bar(total: int, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="batch", unit="prompt", dynamic_ncols=True)
