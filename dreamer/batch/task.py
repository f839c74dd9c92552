"""One prompt of a batch, as a Ray task runs it (also callable directly).

The run is written to `.<name>.partial` beside its final folder and renamed into place once exported
and evaluated, so a folder under its final name is always a finished run: a batch started again skips
it, and a task that was killed (a worker lost, the batch stopped) resumes from the partial folder's
checkpoint when it runs again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

DONE_MARKER = "batch-result.json"  # written last into the partial folder, then the folder is renamed


@dataclass
class PromptResult:
    index: int
    prompt: str
    status: str  # finished | skipped (finished before) | failed
    run_dir: str
    seconds: float = 0.0
    eval: dict = field(default_factory=dict)  # eval.json's summary figures (library prompts)
    error: str | None = None  # one line, when failed
    attempts: int = 1  # how many times the task started (a killed worker's task starts again)
    disk_full: bool = False  # failed for want of space: the batch stops (the next prompts would fail too)


def partial_dir(final: Path) -> Path:
    return final.with_name(f".{final.name}.partial")


def read_finished(final: Path) -> PromptResult | None:
    marker = final / DONE_MARKER
    if not marker.is_file():
        return None
    data = json.loads(marker.read_text())
    data["status"] = "skipped"
    return PromptResult(**data)


def run_prompt(index: int, prompt: str, final_dir: str, config: str = "default", dotted: list[str] | None = None,
               threads: int = 1) -> PromptResult:
    """Make one prompt's asset into `final_dir` (see the module doc); errors come back as a failed result."""
    import torch

    from dreamer.api import EVAL_SUMMARY_KEYS, generate
    from dreamer.errors import DiskFull, TrainingDiverged, UserError
    from dreamer.io import FULL_ERRNOS, atomic_write_text, disk_full_error

    torch.set_num_threads(max(1, int(threads)))  # Ray reuses worker processes: set it in every task
    final = Path(final_dir)
    done = read_finished(final)
    if done is not None:
        return done
    work = partial_dir(final)
    attempts_file = work / "batch-attempts"
    attempts, began = 1, time.perf_counter()
    try:  # every write, the bookkeeping included, may meet a full disk: that is a failed prompt, in one line
        work.mkdir(parents=True, exist_ok=True)
        attempts = int(attempts_file.read_text()) + 1 if attempts_file.is_file() else 1
        atomic_write_text(attempts_file, str(attempts))
        atomic_write_text(work / "batch-worker.pid", str(os.getpid()))  # lets a test kill this very worker
        resume = (work / "checkpoints" / "last.pt").is_file()
        result = generate(prompt, config=config, out=work, resume=resume, overwrite=not resume,
                          dotted=list(dotted or []), trainer__progress=False)
        ev = result.metrics.get("eval", {})
        summary = PromptResult(index, prompt, "finished", str(final), time.perf_counter() - began,
                               {k: ev[k] for k in EVAL_SUMMARY_KEYS if k in ev}, attempts=attempts)
        atomic_write_text(work / DONE_MARKER, json.dumps(asdict(summary)))
    except (UserError, TrainingDiverged, DiskFull) as e:
        return PromptResult(index, prompt, "failed", str(final), time.perf_counter() - began,
                            error=str(e).splitlines()[0], attempts=attempts, disk_full=isinstance(e, DiskFull))
    except OSError as e:  # our own bare writes (the partial folder itself) on a full disk
        if e.errno not in FULL_ERRNOS:
            raise
        return PromptResult(index, prompt, "failed", str(final), time.perf_counter() - began,
                            error=str(disk_full_error(work / "batch-attempts")), attempts=attempts, disk_full=True)
    if final.exists():  # an unfinished leftover under the final name (an older dreamer): replace it
        shutil.rmtree(final)
    os.replace(work, final)
    return summary
