"""A full disk (ENOSPC) while a run writes a checkpoint or an export: one line, the last good file
intact, and `--resume` / `dreamer export` complete once space is freed.

The end-to-end tests use a real small file system (a tmpfs mounted for the module) where the machine
allows mounting (root, as in CI's container); elsewhere they inject ENOSPC into the writes instead.
"""

import errno
import hashlib
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import torch

from conftest import TINY_RUN
from dreamer import cli
from dreamer.errors import DiskFull
from dreamer.io import atomic_path, atomic_save, atomic_write_text
from small_disk import SmallDisk, mount_tmpfs


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------- atomic writes
def test_enospc_from_a_writer_is_one_line_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"good checkpoint")

    def writer(tmp: Path) -> None:
        tmp.write_bytes(b"half a ch")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFull) as error:
        atomic_save(target, writer)
    message = str(error.value)
    assert "\n" not in message and "no space left" in message and "--resume" in message
    assert str(tmp_path) in message and "last.pt" in message
    assert target.read_bytes() == b"good checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # the partial file is gone
    assert isinstance(error.value, OSError) and error.value.exit_code == 28


def test_a_serializer_error_on_a_full_disk_is_disk_full(tmp_path, monkeypatch):
    # torch's writer reports a full disk as a RuntimeError with no errno ("unexpected pos …")
    def torch_like(tmp: Path) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr("dreamer.io._free_bytes", lambda folder: 4096)
    with pytest.raises(DiskFull, match="no space left"):
        atomic_save(tmp_path / "last.pt", torch_like)
    monkeypatch.setattr("dreamer.io._free_bytes", lambda folder: 10 << 30)  # plenty free: a real bug, kept as is
    with pytest.raises(RuntimeError, match="unexpected pos"):
        atomic_save(tmp_path / "last.pt", torch_like)


def test_other_write_errors_are_not_called_disk_full(tmp_path):
    with pytest.raises(PermissionError):
        with atomic_path(tmp_path / "x.txt"):
            raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(TypeError):
        atomic_write_text(tmp_path / "x.txt", 3)  # a bug in the caller, not the disk
    assert list(tmp_path.iterdir()) == []


def test_no_room_for_the_temporary_file_is_disk_full(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("dreamer.io.tempfile.mkstemp", full)
    with pytest.raises(DiskFull, match="while writing model.glb"):
        atomic_write_text(tmp_path / "model.glb", "x")


# ----------------------------------------------------------------------------- a real small disk
@pytest.fixture(scope="module")
def mounted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small-disk") / f"mnt-{uuid.uuid4().hex[:8]}"
    real = mount_tmpfs(folder)
    if not real:
        folder.mkdir(parents=True, exist_ok=True)
    yield folder, real
    if real:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_disk(mounted, monkeypatch):
    folder, real = mounted
    root = folder / uuid.uuid4().hex[:8]
    root.mkdir()
    disk = SmallDisk(root, real, monkeypatch)
    yield disk
    disk.free()
    shutil.rmtree(root, ignore_errors=True)


def run_cli(args, capsys):
    code = cli.main(args)
    return code, capsys.readouterr().err


def test_a_full_disk_at_a_checkpoint_then_resume(small_disk, capsys):
    out = small_disk.root / "run"
    base = ["--quiet", *TINY_RUN, "trainer.checkpoint_every=2", "export.video=false", "trainer.evaluate=false"]
    code, err = run_cli(["generate", "a red cube", "--steps", "2", "--out", str(out), *base], capsys)
    assert code == 0, err
    checkpoint = out / "checkpoints" / "last.pt"
    good = _digest(checkpoint)

    small_disk.fill()
    code, err = run_cli(["generate", "--resume", "--out", str(out), "steps=6", "--quiet"], capsys)
    assert code == 28
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no space left") and "--resume" in lines[0], err
    assert _digest(checkpoint) == good  # the last good checkpoint is intact and loads
    assert torch.load(checkpoint, weights_only=True)["step"] == 2
    assert not list(checkpoint.parent.glob(".last.tmp-*"))

    small_disk.free()
    code, err = run_cli(["generate", "--resume", "--out", str(out), "steps=6", "--quiet"], capsys)
    assert code == 0, err
    assert torch.load(checkpoint, weights_only=True)["step"] == 6
    assert (out / "model.glb").stat().st_size > 0


def test_a_full_disk_during_an_export_keeps_the_old_files(small_disk, capsys):
    out = small_disk.root / "run"
    code, err = run_cli(["generate", "a red cube", "--steps", "2", "--out", str(out), "--quiet", *TINY_RUN,
                         "export.video=false", "trainer.evaluate=false"], capsys)
    assert code == 0, err
    glb = out / "model.glb"
    good = _digest(glb)

    small_disk.fill()
    code, err = run_cli(["export", str(out), "--formats", "obj"], capsys)
    assert code == 28 and len(err.strip().splitlines()) == 1 and "no space left" in err, err
    assert _digest(glb) == good
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no partial files left behind

    small_disk.free()
    code, err = run_cli(["export", str(out), "--formats", "obj"], capsys)
    assert code == 0, err
    assert (out / "model.obj").stat().st_size > 0


def test_a_ui_job_that_hits_a_full_disk_fails_in_one_line_and_resumes(small_disk):
    from ui_support import tiny_config, wait_until

    from dreamer.ui.jobs import JobManager

    jobs = JobManager(small_disk.root / "runs", max_concurrent=1)
    try:
        job = jobs.submit(tiny_config("a green torus", steps=40))  # a checkpoint every 2 steps
        wait_until(lambda: jobs.get(job.id).step >= 3, what="step 3")
        small_disk.fill()
        failed = jobs.wait(job.id, timeout=60)
        assert failed.status == "failed" and failed.error.startswith("no space left") and "\n" not in failed.error
        checkpoint = job.run_dir / "checkpoints" / "last.pt"
        saved = torch.load(checkpoint, weights_only=True)["step"]
        assert 2 <= saved < 40

        small_disk.free()
        jobs.resume(job.id)
        finished = jobs.wait(job.id, timeout=120)
        assert finished.status == "finished" and finished.step == 40
        assert (job.run_dir / "model.glb").is_file()
    finally:
        jobs.shutdown()


def test_a_full_disk_while_appending_metrics_is_disk_full(tmp_path, monkeypatch):
    from dreamer.io import append_text

    log = tmp_path / "metrics.jsonl"
    append_text(log, '{"step": 1}\n')

    def full_open(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("builtins.open", full_open)
    with pytest.raises(DiskFull, match="while writing metrics.jsonl"):
        append_text(log, '{"step": 2}\n')
    monkeypatch.undo()
    assert log.read_text() == '{"step": 1}\n'
