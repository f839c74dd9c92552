"""The amortised generator on several processes (torchrun, gloo): one process at batch 2B against two at
batch B in float64, before and after a two-process resume, and VSD's LoRA averaged over the processes.

Each torchrun costs about 20 s of start-up on two cores (every worker imports torch and diffusers), so the
resume is checked on the float64 comparison's own run rather than on a run of its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from test_amortized import SMALL

pytestmark = pytest.mark.slow(seconds=65)

# Eight prompts instead of the 158 of the vocabulary: every process encodes all of its prompts at start-up
# (about 2 s for 158), and eight still cross epoch boundaries at these batch sizes (a new shuffle each).
FEW_PROMPTS = ["a red cube", "a blue sphere", "a green cone", "a yellow torus", "a purple cylinder",
               "an orange pyramid", "a black chair", "a white mug"]


def few_prompts(folder: Path) -> str:
    path = folder / "prompts.txt"
    path.write_text("\n".join(FEW_PROMPTS) + "\n")
    return str(path)


def torchrun(out: Path, nproc: int, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "dreamer.amortized.train", "--out", str(out), "--quiet", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def single(out: Path, *args: str) -> int:
    """The same training as one process, in this one: no start-up to pay (its exit code)."""
    from dreamer.amortized.train import main

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # as the torchrun workers (OMP_NUM_THREADS=1)
        return main(["--out", str(out), "--quiet", *args])
    finally:
        torch.set_num_threads(threads)


def _one_against_two(tmp_path, *args):
    """Three steps on one process at batch 4 (in tmp_path/one) and on two at batch 2 each (tmp_path/two)."""
    common = ["--steps", "3", "--prompts", few_prompts(tmp_path), "train.dtype=float64", "train.log_every=1",
              "train.batch_size=4", *SMALL, *args]
    assert single(tmp_path / "one", *common) == 0
    two = torchrun(tmp_path / "two", 2, *common)  # 2 prompts per process per step
    assert two.returncode == 0, two.stderr[-2000:]
    return _compare(tmp_path / "one", tmp_path / "two", 3)


def _compare(one: Path, two: Path, steps: int):
    a = torch.load(one / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(two / "checkpoints" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == steps
    lines = [json.loads(x) for x in (one / "metrics.jsonl").read_text().splitlines()]
    lines2 = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [r["step"] for r in lines2] == list(range(1, steps + 1))
    return a, b, lines, lines2


def _assert_float64_equal(a, b, lines, lines2):
    for key, value in a["model"].items():
        assert value.dtype == torch.float64 or not value.is_floating_point()
        assert torch.allclose(value, b["model"][key], rtol=0, atol=1e-10), key
    for r, s in zip(lines, lines2):
        assert r["loss"] == pytest.approx(s["loss"], rel=1e-9) and r["grad_norm"] == pytest.approx(s["grad_norm"], rel=1e-9)


def refused(capsys, out: Path, *args: str) -> tuple[int, str]:
    """(exit code, the error line) of a training refused before any process group starts."""
    code = single(out, *args)
    return code, capsys.readouterr().err.strip()


def test_two_processes_at_batch_b_equal_one_process_at_2b_in_float64_and_after_a_resume(tmp_path, capsys):
    _assert_float64_equal(*_one_against_two(tmp_path))
    two = tmp_path / "two"
    code, line = refused(capsys, two, "--steps", "6", "train.batch_size=4")
    assert code == 2 and "add --resume" in line
    resumed = torchrun(two, 2, "--steps", "6", "--resume")  # from the step-3 checkpoint, on two processes again
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert single(tmp_path / "one", "--steps", "6", "--resume") == 0  # and the one process resumed alike
    _assert_float64_equal(*_compare(tmp_path / "one", two, 6))  # a resume on two processes matches one on one
    code, line = refused(capsys, two, "--steps", "9", "--resume", "train.lr=0.5")
    assert code == 2 and "train.lr" in line and "cannot change" in line


def test_vsd_lora_is_averaged_over_the_processes(tmp_path):
    # VSD's LoRA (the rule's own network) stays float32, so agreement is to float32 precision
    a, b, _, _ = _one_against_two(tmp_path, "--guidance", "vsd")
    assert a["guidance"] and a["guidance"].keys() == b["guidance"].keys()
    assert any(float(v.abs().sum()) > 0 for k, v in a["guidance"].items() if "lora_B" in k)  # trained (starts at 0)
    for key, value in a["guidance"].items():
        assert torch.allclose(value, b["guidance"][key], rtol=0, atol=1e-6), key
    for key, value in a["model"].items():
        if value.is_floating_point():
            assert torch.allclose(value, b["model"][key], rtol=0, atol=1e-6), key
