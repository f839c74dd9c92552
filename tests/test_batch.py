"""`dreamer batch` on a local 2-CPU Ray (one per module): every prompt made, finished ones skipped, a
failing prompt reported in one line, and a worker killed with SIGKILL retried from its checkpoint."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import TINY_RUN
from dreamer import cli
from dreamer.batch.runner import run_batch

pytestmark = pytest.mark.slow(seconds=35)

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "dreamer-cache"  # the workers keep the test's reference cache too
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"DREAMER_CACHE": str(cache), "OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


def settings(steps: int) -> list[str]:
    return [*TINY_RUN, f"steps={steps}", "trainer.evaluate=false"]


def test_every_prompt_is_made_then_skipped_when_run_again(tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cube\n# a comment\n\na blue sphere\na green torus\n")
    out = tmp_path / "batch"
    code = cli.main(["batch", str(prompts), "--out", str(out), "--parallel", "2", "--quiet", *settings(2)])
    stdout = capsys.readouterr().out
    assert code == 0 and "3 made, 0 already there, 0 failed" in stdout
    report = json.loads((out / "batch.json").read_text())
    assert (report["prompts"], report["finished"], report["failed"], report["pending"]) == (3, 3, 0, 0)
    assert [r["prompt"] for r in report["results"]] == ["a red cube", "a blue sphere", "a green torus"]
    for r in report["results"]:
        assert r["status"] == "finished" and (out / os.path.basename(r["run_dir"]) / "model.glb").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["0000-a-red-cube", "0001-a-blue-sphere", "0002-a-green-torus",
                                                     "batch.json", "batch.png"]  # no partial folders left
    assert report["contact_sheet"] == "batch.png"

    again = run_batch(prompts, out, parallel=2, dotted=settings(2), progress=False)
    assert [r.status for r in again.results] == ["skipped"] * 3
    assert json.loads((out / "batch.json").read_text())["finished"] == 3


def test_a_failing_prompt_is_one_line_and_the_others_finish(tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cube\na wooden spaceship\n")  # the exact prior has nothing for the second
    code = cli.main(["batch", str(prompts), "--out", str(tmp_path / "b"), "--quiet", *settings(2)])
    stdout = capsys.readouterr().out
    assert code == 1 and "1 made, 0 already there, 1 failed" in stdout
    failed = [r for r in json.loads((tmp_path / "b" / "batch.json").read_text())["results"] if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["prompt"] == "a wooden spaceship"
    assert "\n" not in failed[0]["error"] and failed[0]["error"]


def test_a_killed_worker_is_retried_and_nothing_finished_is_lost(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cube\na blue sphere\n")
    out = tmp_path / "b"
    result = {}
    worker = threading.Thread(target=lambda: result.update(summary=run_batch(
        prompts, out, parallel=1, dotted=settings(200), progress=False)))
    worker.start()
    partial = out / ".0000-a-red-cube.partial"
    deadline = time.monotonic() + 120
    while not (partial / "checkpoints" / "last.pt").is_file():  # the first prompt has saved a checkpoint
        assert time.monotonic() < deadline, "the first task never checkpointed"
        time.sleep(0.05)
    os.kill(int((partial / "batch-worker.pid").read_text()), signal.SIGKILL)
    worker.join(timeout=900)
    assert "summary" in result, "the batch did not finish"
    summary = result["summary"]
    assert [r.status for r in summary.results] == ["finished", "finished"]
    first = summary.results[0]
    assert first.attempts == 2  # Ray ran the task again after its worker died
    steps = [json.loads(line)["step"] for line in (out / "0000-a-red-cube" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 201))  # resumed from the checkpoint: no gap, no repeat
    assert not partial.exists()


def test_bad_input_is_one_line(tmp_path, capsys):
    code = cli.main(["batch", str(tmp_path / "none.txt"), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [f"error: prompt file '{tmp_path / 'none.txt'}' does not exist: "
                                                      "give a text file with one prompt per line"]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    assert cli.main(["batch", str(empty), "--out", str(tmp_path / "b")]) == 2
    assert "holds no prompt" in capsys.readouterr().err
    listed = tmp_path / "p.txt"
    listed.write_text("a red cube\n")
    assert cli.main(["batch", str(listed), "--out", str(tmp_path / "b"), "guidance.nonsense=1"]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_a_full_disk_stops_the_batch_in_one_line_and_a_rerun_resumes(tmp_path, capsys):
    """The disk fills up while the first prompt trains: the batch stops with one line (exit 28), the
    prompt's last checkpoint is intact, and once space is freed the same command resumes it."""
    import torch
    from small_disk import SmallDisk, mount_tmpfs

    mount = tmp_path / "small-disk"
    if not mount_tmpfs(mount):  # Ray's workers are other processes: only a real small disk reaches them
        pytest.skip("mounting a tmpfs needs root (CI's container has it)")
    try:
        disk = SmallDisk(mount, True, None)
        prompts = tmp_path / "prompts.txt"
        prompts.write_text("a red cube\na blue sphere\n")
        out = mount / "batch"
        args = ["batch", str(prompts), "--out", str(out), "--quiet", *settings(200)]
        codes = []
        worker = threading.Thread(target=lambda: codes.append(cli.main(args)))
        worker.start()
        partial = out / ".0000-a-red-cube.partial"
        checkpoint = partial / "checkpoints" / "last.pt"
        deadline = time.monotonic() + 120
        while not checkpoint.is_file():
            assert time.monotonic() < deadline, "the first task never checkpointed"
            time.sleep(0.05)
        disk.fill()
        worker.join(timeout=300)
        err = capsys.readouterr().err.strip().splitlines()
        assert codes == [28] and len(err) == 1 and err[0].startswith("error: no space left"), (codes, err)
        saved = torch.load(checkpoint, weights_only=True)["step"]  # intact and loadable
        assert 2 <= saved < 200

        disk.free()
        assert cli.main(args) == 0
        report = json.loads((out / "batch.json").read_text())
        assert [r["status"] for r in report["results"]] == ["finished", "finished"]
        steps = [json.loads(line)["step"] for line in (out / "0000-a-red-cube" / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(1, 201))  # resumed from the checkpoint: no gap, no repeat
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_no_room_for_the_partial_folder_is_a_disk_full_result(tmp_path, monkeypatch):
    """A directory needs a block on most file systems (not on tmpfs): a full disk at the partial
    folder's mkdir is a disk-full result too, so the batch stops."""
    import errno
    from pathlib import Path

    from dreamer.batch.task import run_prompt

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", full)
    result = run_prompt(0, "a red cube", str(tmp_path / "0000-a-red-cube"), dotted=settings(2))
    assert result.status == "failed" and result.disk_full and result.error.startswith("no space left")
