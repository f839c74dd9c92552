"""The job queue behind the UI: a FIFO of text-to-3D runs and `max_concurrent` worker threads.

Nothing here knows about Gradio: the page polls `get()` / `jobs()`, so a job outlives the browser
tab that started it. Each job is a run folder under the runs folder; its `config.yaml` is written
when the job is queued, so a job is in the history (and resumable) from that moment on. A job
runs `dreamer.api.generate(..., out=run_dir)`; Cancel makes its `should_stop` true, the trainer
saves a checkpoint and raises `Interrupted`, and Resume runs `generate(resume=True, out=run_dir)`.

Restarts lose nothing: each job's state is also on disk (`ui-job.json`: queued, running, interrupted —
stopped by the server's own shutdown — cancelled, failed or finished). A manager started with
`recover=True` (the server) queues again, in their original order, the jobs a previous server left
queued, running or interrupted (also after a crash): from their checkpoint when they have one, else
from step 0. Finished jobs and jobs the user cancelled are left alone, so none runs twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dreamer.api import (DiskFull, Interrupted, ProgressEvent, RunConfig, TrainingDiverged, UserError, atomic_write_text,
                         generate, save_run_config)

from dreamer.ui.history import STATUS_FILE, read_run
from dreamer.ui.paths import new_run_dir, run_dir_for, runs_root

log = logging.getLogger(__name__)

Status = Literal["queued", "running", "cancelling", "cancelled", "finished", "failed"]
ACTIVE: tuple[str, ...] = ("queued", "running", "cancelling")
RESUMABLE: tuple[str, ...] = ("cancelled", "failed")


@dataclass
class JobState:
    """What the page shows of one job (a snapshot: the manager keeps the live copy)."""

    id: str  # the run folder's name
    run_dir: Path
    prompt: str
    status: Status = "queued"
    step: int = 0  # steps completed
    total: int = 0  # the run's final step
    loss: float | None = None  # loss of the last step
    eta_s: float | None = None  # seconds left in training (export and eval come after)
    preview: Path | None = None  # newest preview render
    error: str | None = None  # one line, when failed
    queue_position: int | None = None  # 1 = next to start; None unless queued
    resume: bool = False  # the next start continues from the checkpoint
    is_4d: bool = False  # a 4D run: it ends by exporting an animation and two videos
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None


class JobManager:
    """Queue, run, cancel and resume jobs; `max_concurrent` run at once, the rest wait in order."""

    def __init__(self, runs_dir: Path | str, max_concurrent: int = 1, generate_kwargs: dict[str, Any] | None = None,
                 recover: bool = False):
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise UserError(f"concurrency must be a positive integer, got {max_concurrent!r}")
        self.runs_dir = runs_root(runs_dir)
        self.max_concurrent = max_concurrent
        # Passed to every generate call (e.g. trainer__progress=False: no progress bar on the server's stderr).
        self.generate_kwargs = {"trainer__progress": False, **(generate_kwargs or {})}
        self._jobs: dict[str, JobState] = {}
        self._stop: dict[str, threading.Event] = {}
        self._pending: deque[str] = deque()
        self._cond = threading.Condition()
        self._closed = False
        with self._cond:
            self.recovered: list[str] = self._recover() if recover else []  # job ids queued again at start-up
        self._workers = [threading.Thread(target=self._work, name=f"dreamer-job-{i}", daemon=True)
                         for i in range(max_concurrent)]
        for worker in self._workers:
            worker.start()

    # -- what the page calls ----------------------------------------------------------------
    def submit(self, config: RunConfig) -> JobState:
        """Queue a new run of `config` in a new run folder named after its prompt."""
        config.validate()
        run_dir = new_run_dir(self.runs_dir, config.prompt)
        save_run_config(config, run_dir / "config.yaml")
        job = JobState(id=run_dir.name, run_dir=run_dir, prompt=config.prompt, total=config.steps, is_4d=config.is_4d)
        with self._cond:
            self._check_open()
            self._jobs[job.id] = job
            self._enqueue(job)
            self._write_status(job, "queued")
            return self._snapshot(job)

    def cancel(self, job_id: str) -> JobState:
        """A queued job leaves the queue; a running one stops at its next step with a checkpoint."""
        with self._cond:
            job = self._known(job_id)
            if job.status == "queued":
                self._pending.remove(job.id)
                self._finish(job, "cancelled")
            elif job.status == "running":
                job.status = "cancelling"
                self._stop[job.id].set()
            elif job.status != "cancelling":
                raise UserError(f"job '{job_id}' is {job.status}: only queued or running jobs can be cancelled")
            return self._snapshot(job)

    def resume(self, job_id: str) -> JobState:
        """Queue a cancelled or failed job (also one from before a restart) to continue from its checkpoint."""
        with self._cond:
            self._check_open()
            job = self._jobs.get(job_id) or self._from_disk(job_id)
            if job.status not in RESUMABLE:
                raise UserError(f"job '{job_id}' is {job.status}: only cancelled or failed jobs can be resumed")
            job.resume = True
            job.error = None
            job.eta_s = None
            self._jobs[job.id] = job
            self._enqueue(job)
            self._write_status(job, "queued")
            return self._snapshot(job)

    def get(self, job_id: str) -> JobState | None:
        with self._cond:
            job = self._jobs.get(job_id)
            return self._snapshot(job) if job is not None else None

    def state(self, job_id: str) -> JobState:
        """A job of this app's lifetime, else the run folder of that name as the history reads it."""
        with self._cond:
            job = self._jobs.get(job_id)
            return self._snapshot(job) if job is not None else self._from_disk(job_id)

    def jobs(self) -> list[JobState]:
        """Every job of this app's lifetime, oldest first."""
        with self._cond:
            return [self._snapshot(j) for j in self._jobs.values()]

    def wait(self, job_id: str, timeout: float | None = None) -> JobState:
        """Block until the job is neither queued nor running; returns its state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            job = self._known(job_id)
            while job.status in ACTIVE:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
                self._cond.wait(left)
            return self._snapshot(job)

    def shutdown(self, timeout: float | None = 60.0) -> None:
        """Stop taking jobs, cancel running ones (they save checkpoints) and wait for the workers."""
        with self._cond:
            self._closed = True
            for job_id in list(self._pending):
                self._finish(self._jobs[job_id], "cancelled")
            self._pending.clear()
            for job in self._jobs.values():
                if job.status == "running":
                    job.status = "cancelling"
                    self._stop[job.id].set()
            self._cond.notify_all()
        for worker in self._workers:
            worker.join(timeout)

    # -- internals (called with the lock held unless said otherwise) -------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise UserError("the app is shutting down: no new jobs")

    def _known(self, job_id: str) -> JobState:
        job = self._jobs.get(job_id)
        if job is None:
            raise UserError(f"no job '{job_id}' in this session: pick one from the job list or the history")
        return job

    def _from_disk(self, job_id: str) -> JobState:
        record = read_run(run_dir_for(self.runs_dir, job_id))
        if record is None:
            raise UserError(f"'{job_id}' is not a run folder (no config.yaml)")
        return JobState(id=record.id, run_dir=record.run_dir, prompt=record.prompt, status=record.status,
                        step=record.step, total=record.total, loss=record.loss, error=record.error,
                        preview=record.thumbnail, submitted_at=record.modified, is_4d=record.is_4d)

    def _enqueue(self, job: JobState) -> None:
        job.status = "queued"
        job.finished_at = None
        self._stop[job.id] = threading.Event()
        self._pending.append(job.id)
        self._cond.notify_all()

    def _snapshot(self, job: JobState) -> JobState:
        position = self._pending.index(job.id) + 1 if job.status == "queued" else None
        return dataclasses.replace(job, queue_position=position)

    def _finish(self, job: JobState, status: Status, error: str | None = None) -> None:
        job.status = status
        job.error = error
        job.finished_at = time.time()
        job.eta_s = None if status != "finished" else 0.0
        # stopped by the server's shutdown, not by the user: the next server queues it again
        self._write_status(job, "interrupted" if status == "cancelled" and self._closed else status, error)
        self._cond.notify_all()

    def _write_status(self, job: JobState, status: str, error: str | None = None) -> None:
        try:
            atomic_write_text(job.run_dir / STATUS_FILE, json.dumps({"status": status, "error": error,
                                                                     "submitted": job.submitted_at}))
        except OSError as e:  # the folder went away, or the disk is full: the page still shows the state
            log.warning("cannot write %s in %s: %s", STATUS_FILE, job.run_dir, e)

    def _recover(self) -> list[str]:
        """Queue again the jobs a previous server left queued, running or interrupted (oldest first)."""
        from dreamer.ui.history import read_status_file

        found = []
        for run_dir in self.runs_dir.iterdir() if self.runs_dir.is_dir() else []:
            if run_dir.name.startswith(".") or not (run_dir / "config.yaml").is_file():
                continue
            if (run_dir / "model.glb").is_file():
                continue  # finished (its status may not have been written before a crash)
            saved = read_status_file(run_dir)
            if saved.get("status") in ("queued", "running", "interrupted"):
                found.append((float(saved.get("submitted") or 0.0), run_dir.name))
        ids = []
        for submitted, job_id in sorted(found):
            job = self._from_disk(job_id)
            job.submitted_at = submitted or job.submitted_at
            job.resume = (job.run_dir / "checkpoints" / "last.pt").is_file()
            job.error = None
            self._jobs[job.id] = job
            self._enqueue(job)
            ids.append(job.id)
        return ids

    # -- the worker threads (lock not held) ---------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return  # closed and nothing left
                job = self._jobs[self._pending.popleft()]
                job.status = "running"
                job.started_at = time.time()
                stop = self._stop[job.id]
                resume = job.resume
                self._cond.notify_all()
            self._write_status(job, "running")  # the outcome of an earlier try no longer holds
            self._run(job, stop, resume)

    def _run(self, job: JobState, stop: threading.Event, resume: bool) -> None:
        def on_progress(event: ProgressEvent) -> None:
            with self._cond:
                job.step, job.total, job.loss, job.eta_s = event.step, event.total, event.loss, event.eta_s
                if event.preview is not None:
                    job.preview = event.preview

        try:
            if resume:
                generate(resume=True, out=job.run_dir, on_progress=on_progress, should_stop=stop.is_set,
                         **self.generate_kwargs)
            else:
                generate(config=str(job.run_dir / "config.yaml"), out=job.run_dir, on_progress=on_progress,
                         should_stop=stop.is_set, **self.generate_kwargs)
        except Interrupted:
            outcome: tuple[Status, str | None] = ("cancelled", None)
        except (UserError, TrainingDiverged, DiskFull) as e:  # DiskFull: resume the job once space is freed
            outcome = ("failed", str(e).splitlines()[0])
        except Exception as e:  # noqa: BLE001 - a bug must not kill the worker; the trace goes to the log
            log.exception("job %s failed", job.id)
            outcome = ("failed", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'internal error'}")
        else:
            outcome = ("finished", None)
        with self._cond:
            self._finish(job, *outcome)
