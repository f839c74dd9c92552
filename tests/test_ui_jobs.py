"""The UI's job queue without a browser: FIFO order, cancel with a checkpoint, resume, restart."""

import json

import pytest
from ui_support import tiny_config, wait_until

from dreamer.errors import UserError
from dreamer.run_config import load_run_config
from dreamer.ui.history import STATUS_FILE, list_runs, read_run
from dreamer.ui.jobs import JobManager

pytestmark = pytest.mark.slow(seconds=25)  # many end-to-end runs: scheduled early (tests/conftest.py)


@pytest.fixture
def manager(tmp_path):
    jobs = JobManager(tmp_path / "runs", max_concurrent=1)
    yield jobs
    jobs.shutdown()


def quick_job(prompt: str, steps: int = 6):
    """A tiny job without the evaluation (most of a 4-step job's time; the queue does not depend on it, and
    the multi-view form test below checks its eval.json)."""
    return tiny_config(prompt, steps=steps, **{"trainer.evaluate": False})


def _metric_steps(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_jobs_queue_in_order_and_both_finish(manager):
    first = manager.submit(quick_job("a red cube", steps=30))
    second = manager.submit(quick_job("a blue sphere", steps=4))
    assert (first.run_dir / "config.yaml").is_file() and (second.run_dir / "config.yaml").is_file()
    wait_until(lambda: manager.get(first.id).status == "running", what="the first job to start")
    waiting = manager.get(second.id)
    assert waiting.status == "queued" and waiting.queue_position == 1
    assert manager.get(first.id).queue_position is None

    done = [manager.wait(first.id, timeout=120), manager.wait(second.id, timeout=120)]
    assert [j.status for j in done] == ["finished", "finished"]
    assert [(j.step, j.total) for j in done] == [(30, 30), (4, 4)]
    assert done[0].finished_at <= done[1].started_at  # one at a time, in the order submitted
    for job in done:
        assert (job.run_dir / "model.glb").is_file() and (job.run_dir / "turntable.mp4").is_file()
        assert job.preview is not None and job.preview.parent == job.run_dir / "previews"
        saved = json.loads((job.run_dir / STATUS_FILE).read_text())
        assert (saved["status"], saved["error"], saved["submitted"]) == ("finished", None, job.submitted_at)
    assert first.run_dir.parent == second.run_dir.parent == manager.runs_dir


def test_cancel_keeps_the_checkpoint_and_resume_completes(manager):
    job = manager.submit(quick_job("a green torus", steps=40))
    wait_until(lambda: manager.get(job.id).step >= 3, what="step 3")
    manager.cancel(job.id)
    stopped = manager.wait(job.id, timeout=30)
    assert stopped.status == "cancelled" and 3 <= stopped.step < 40
    assert (job.run_dir / "checkpoints" / "last.pt").is_file()
    assert not (job.run_dir / "model.glb").exists()
    record = read_run(job.run_dir)
    assert record.status == "cancelled" and record.step == stopped.step and record.total == 40

    with pytest.raises(UserError, match="only queued or running jobs can be cancelled"):
        manager.cancel(job.id)
    manager.resume(job.id)
    finished = manager.wait(job.id, timeout=120)
    assert finished.status == "finished" and finished.step == 40
    assert (job.run_dir / "model.glb").is_file()
    assert _metric_steps(job.run_dir) == list(range(1, 41))  # continued from the checkpoint, no gap, no repeat
    with pytest.raises(UserError, match="only cancelled or failed jobs can be resumed"):
        manager.resume(job.id)


def test_a_queued_job_can_be_cancelled_and_later_resumed_from_step_0(manager):
    first = manager.submit(quick_job("a red cube", steps=20))
    second = manager.submit(quick_job("a blue cube", steps=3))
    cancelled = manager.cancel(second.id)
    assert cancelled.status == "cancelled" and cancelled.queue_position is None
    assert manager.wait(first.id, timeout=120).status == "finished"
    assert manager.get(second.id).status == "cancelled" and not (second.run_dir / "checkpoints").exists()
    manager.resume(second.id)
    assert manager.wait(second.id, timeout=120).status == "finished"


def test_history_after_a_restart_lists_both_runs_and_resumes_from_disk(tmp_path):
    runs = tmp_path / "runs"
    before = JobManager(runs, max_concurrent=1)
    done = before.submit(quick_job("a red cube", steps=4))
    stopped = before.submit(quick_job("a yellow cone", steps=40))
    before.wait(done.id, timeout=120)
    wait_until(lambda: before.get(stopped.id).step >= 2, what="step 2")
    before.shutdown()  # the app closing: the running job saves a checkpoint and stops
    assert before.get(stopped.id).status == "cancelled"

    after = JobManager(runs, max_concurrent=1)
    try:
        assert after.jobs() == []
        records = {r.id: r for r in list_runs(after.runs_dir)}
        assert set(records) == {done.id, stopped.id}
        assert records[done.id].status == "finished" and records[done.id].prompt == "a red cube"
        assert records[stopped.id].status == "cancelled" and records[stopped.id].prompt == "a yellow cone"
        assert records[done.id].thumbnail == done.run_dir / "previews" / "latest.png"
        assert after.state(stopped.id).status == "cancelled"  # read from disk
        after.resume(stopped.id)
        resumed = after.wait(stopped.id, timeout=120)
        assert resumed.status == "finished" and resumed.step == 40
    finally:
        after.shutdown()


def test_a_failing_job_reports_one_line_and_history_remembers_it(manager, tmp_path):
    missing = {"prompt": "a red cube", "steps": 4, "prior": {"name": "tiny", "weights": str(tmp_path / "nowhere")}}
    job = manager.submit(load_run_config("default", missing))
    failed = manager.wait(job.id, timeout=60)
    assert failed.status == "failed" and "\n" not in failed.error and failed.error
    restarted = read_run(job.run_dir)
    assert restarted.status == "failed" and restarted.error == failed.error


def test_bad_submissions_are_user_errors(manager):
    with pytest.raises(UserError, match="the prompt is empty"):
        manager.submit(quick_job("   "))
    with pytest.raises(UserError, match="no job 'nope'"):
        manager.cancel("nope")
    with pytest.raises(UserError, match="not a run name"):
        manager.resume("../elsewhere")
    with pytest.raises(UserError, match="concurrency must be a positive integer"):
        JobManager(manager.runs_dir, max_concurrent=0)
    assert list(manager.runs_dir.iterdir()) == []


def test_the_multi_view_preset_runs_from_the_form(manager):
    from dreamer.ui.form import FormValues, preset_choices, resolve_form
    from ui_support import UI_TINY

    assert "mvdream-sds-tiny" in preset_choices()
    small = [o for o in UI_TINY if not o.startswith("prior")]  # the preset's own prior, at its own size
    config = resolve_form(FormValues(prompt="a red chair", preset="mvdream-sds-tiny", steps=3), small)
    assert (config.prior.name, config.guidance.name) == ("tiny-mv", "sds")
    job = manager.wait(manager.submit(config).id, timeout=180)
    assert job.status == "finished" and (job.run_dir / "model.glb").is_file()
    assert json.loads((job.run_dir / "eval.json").read_text())["prompt"] == "a red chair"


def test_a_restart_queues_again_what_was_queued_or_running_and_nothing_runs_twice(tmp_path):
    runs = tmp_path / "runs"
    before = JobManager(runs, max_concurrent=1)
    done = before.submit(quick_job("a red cube", steps=4))
    assert before.wait(done.id, timeout=120).status == "finished"
    running = before.submit(quick_job("a green torus", steps=200))
    queued = [before.submit(quick_job(p, steps=4)) for p in ("a blue sphere", "a red cone")]
    cancelled = before.submit(quick_job("a gray cube", steps=4))
    before.cancel(cancelled.id)  # the user's own cancel: not resumed by a restart
    wait_until(lambda: before.get(running.id).step >= 3, what="step 3")
    before.shutdown()  # the server stops with one job running and two queued
    stopped_at = read_run(running.run_dir).step
    assert 3 <= stopped_at < 200

    after = JobManager(runs, max_concurrent=1, recover=True)
    try:
        assert after.recovered == [running.id] + [q.id for q in queued]  # in their original order
        finished = [after.wait(job_id, timeout=180) for job_id in after.recovered]
        assert [j.status for j in finished] == ["finished"] * 3
        assert _metric_steps(running.run_dir) == list(range(1, 201))  # resumed from its checkpoint, no step twice
        for job in queued:
            assert _metric_steps(job.run_dir) == [1, 2, 3, 4]
        assert after.get(done.id) is None and read_run(done.run_dir).status == "finished"  # not run again
        assert after.get(cancelled.id) is None and read_run(cancelled.run_dir).status == "cancelled"
    finally:
        after.shutdown()


def test_after_a_crash_the_states_left_on_disk_are_recovered(tmp_path):
    """A server killed outright writes nothing more: its jobs are left "queued" or "running" on disk."""
    import dreamer
    from dreamer.errors import Interrupted
    from dreamer.run_config import save_run_config
    from dreamer.ui.paths import new_run_dir

    runs = tmp_path / "runs"
    config = quick_job("a blue sphere", steps=6)
    running_dir, queued_dir = new_run_dir(runs, "a blue sphere"), new_run_dir(runs, "a red cone")
    for folder, prompt in ((running_dir, "a blue sphere"), (queued_dir, "a red cone")):
        config.prompt = prompt
        save_run_config(config, folder / "config.yaml")
    with pytest.raises(Interrupted):  # stopped at step 3, as a crash mid-run would leave it: a checkpoint
        progress = {}
        dreamer.generate(config=str(running_dir / "config.yaml"), out=running_dir, trainer__progress=False,
                         on_progress=lambda e: progress.update(step=e.step), should_stop=lambda: progress.get("step", 0) >= 3)
    (running_dir / STATUS_FILE).write_text(json.dumps({"status": "running", "error": None, "submitted": 1.0}))
    (queued_dir / STATUS_FILE).write_text(json.dumps({"status": "queued", "error": None, "submitted": 2.0}))

    after = JobManager(runs, max_concurrent=1, recover=True)
    try:
        assert after.recovered == [running_dir.name, queued_dir.name]
        done = [after.wait(job_id, timeout=120) for job_id in after.recovered]
        assert [j.status for j in done] == ["finished", "finished"]
        assert _metric_steps(running_dir) == [1, 2, 3, 4, 5, 6]  # resumed after step 3, nothing twice
        assert (queued_dir / "model.glb").is_file()
    finally:
        after.shutdown()


RACE = """
import sys, threading, torch
from dreamer.run_config import load_run_config
from dreamer.trainer.build import build_prior
config = load_run_config("default", {"prompt": "a red cube"}, ["prior=reference", "prior.image_size=16"])
barrier, errors = threading.Barrier(4), []
def start():
    barrier.wait()
    try:
        build_prior(config, torch.device("cpu"))
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=start) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors)
sys.exit(1 if errors else 0)
"""


def test_jobs_that_start_together_build_their_priors_one_at_a_time():
    """Four threads build a prior at the same moment in a fresh interpreter (diffusers not yet imported),
    as UI jobs starting together do. Unlocked, this failed every time with "cannot import name
    'DDPMScheduler' from 'diffusers'": diffusers' lazy attributes are not thread-safe."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr[-2000:]
