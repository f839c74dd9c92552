"""End-to-end runs through the CLI, every bad input, resume, Ctrl-C and NaN handling."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
import trimesh

from conftest import TINY_RUN
from dreamer import cli
from dreamer.errors import Interrupted


def run_cli(args, capsys):
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def red_cube_run(tmp_path_factory):
    """A finished 2-step "a red cube" run made once through the CLI (exit 0 checked here); the tests
    that start from such a run get their own copy (`_copy_of_red_cube_run`)."""
    out = tmp_path_factory.mktemp("red-cube-2-steps") / "run"
    with pytest.MonkeyPatch.context() as mp:  # the cache conftest's autouse fixture sets for each test
        mp.setenv("DREAMER_CACHE", str(tmp_path_factory.getbasetemp() / "dreamer-cache"))
        assert cli.main(["generate", "a red cube", "--steps", "2", "--out", str(out), "--quiet", *TINY_RUN]) == 0
    return out


def _copy_of_red_cube_run(red_cube_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(red_cube_run, out)
    return out


def test_help_runs_without_gpu_or_heavy_imports():
    out = subprocess.run([sys.executable, "-m", "dreamer", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "generate" in out.stdout and "export" in out.stdout
    probe = "import sys, dreamer; print(any(m in sys.modules for m in ('torch', 'diffusers', 'nerfacc', 'gsplat')))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"


def test_generate_end_to_end_writes_every_output(tmp_path, tiny_run, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(["generate", "a red cube", "--steps", "4", "--out", str(out), "--quiet",
                               "--formats", "obj,ply", *tiny_run], capsys)
    assert code == 0, stdout
    for name in ("config.yaml", "metrics.jsonl", "checkpoints/last.pt", "model.glb", "model.obj", "model.ply",
                 "eval.json", "previews/latest.png"):
        assert (out / name).exists(), name
    assert (out / "turntable.mp4").exists() or (out / "turntable.gif").exists()
    mesh = trimesh.load(out / "model.glb", force="mesh")
    # textured by default: a baked albedo texture with one UV per vertex (tests/test_export_*.py check more)
    assert len(mesh.faces) > 0 and mesh.visual.uv.shape == (len(mesh.vertices), 2)
    assert mesh.visual.material.baseColorTexture is not None
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records)
    ev = json.loads((out / "eval.json").read_text())
    assert 0.0 <= ev["iou"] <= 1.0 and ev["views"] == 8 and ev["resolution"] == 128
    assert "model.glb" in stdout and "IoU" in stdout and "volume IoU" in stdout
    # the 3D figures are those of the exported (textured, seam-split) model.glb against the ground truth
    for key in ("volume_iou", "fscore_002", "fscore_005"):
        assert 0.0 <= ev[key] <= 1.0, key
    assert -1.0 <= ev["normal_consistency"] <= 1.0  # signed: an inside-out surface scores below 0
    assert ev["chamfer_l1"] >= 0.0 and len(ev["extent_error"]) == 3
    from dreamer.eval.geometry import geometry_metrics, load_mesh
    from dreamer.shapes import parse_prompt, spec_mesh

    assert ev["surface_samples"] == 2000  # tiny_run's export.eval_surface_samples
    again = geometry_metrics(load_mesh(out / "model.glb"), spec_mesh(parse_prompt("a red cube")), samples=2000)
    assert again.volume_iou == pytest.approx(ev["volume_iou"]) and again.chamfer_l1 == pytest.approx(ev["chamfer_l1"])

    # export and eval work from the folder alone
    code, stdout, _ = run_cli(["export", str(out), "--format", "ply", "--resolution", "24"], capsys)
    assert code == 0 and stdout.strip().endswith("model.ply")
    code, stdout, _ = run_cli(["eval", str(out)], capsys)
    assert code == 0 and "IoU" in stdout


BAD_INPUTS = [
    (["generate", "   "], "the prompt is empty"),
    (["generate", "a red cube", "--guidance", "magic"], "unknown guidance 'magic'"),
    (["generate", "a red cube", "--prior", "dalle"], "unknown prior 'dalle'"),
    (["generate", "a red cube", "--representation", "voxels9"], "unknown representation 'voxels9'"),
    (["generate", "a red cube", "guidance.scale_of_guidance=3"], "unknown config key 'guidance.scale_of_guidance'"),
    (["generate", "a red cube", "seed=abc"], "config key 'seed' must be an integer"),
    (["generate", "a red cube", "--steps", "0"], "steps must be a positive integer"),
    (["generate", "a red cube", "resolution=0"], "resolution must be a positive integer"),
    (["generate", "a red cube", "--config", "no-such-preset"], "config 'no-such-preset' not found"),
    (["generate", "a purple dragon", "--config", "reference"], "outside what the embedded 'reference' prior knows (unknown word 'dragon')"),
    (["export", "/nonexistent/run"], "does not exist"),
]


@pytest.mark.parametrize("args, message", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2(args, message, tmp_path, capsys):
    code, _, err = run_cli([*args, "--out", str(tmp_path / "r")] if args[0] == "generate" else args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "Traceback" not in err


def test_output_folder_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    code, _, err = run_cli(["generate", "a red cube", "--out", str(target)], capsys)
    assert code == 2 and "is a file" in err and target.read_text() == "keep me"


def test_output_folder_not_writable(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code, _, err = run_cli(["generate", "a red cube", "--out", str(blocker / "sub")], capsys)
    assert code == 2 and "cannot create output folder" in err


def test_existing_run_is_not_overwritten_without_a_flag(tmp_path, tiny_run, capsys, red_cube_run):
    out = _copy_of_red_cube_run(red_cube_run, tmp_path)  # `generate "a red cube" --steps 2`, exit 0
    before = (out / "checkpoints" / "last.pt").read_bytes()
    code, _, err = run_cli(["generate", "a blue cube", "--steps", "2", "--out", str(out), "--quiet", *tiny_run], capsys)
    assert code == 2 and "already holds a run" in err
    assert (out / "checkpoints" / "last.pt").read_bytes() == before
    code, _, _ = run_cli(["generate", "a blue cube", "--steps", "2", "--out", str(out), "--quiet", "--overwrite",
                          *tiny_run, "trainer.evaluate=false"], capsys)  # the eval is tested above
    assert code == 0 and "blue" in (out / "config.yaml").read_text()


def test_resume_takes_several_overrides_without_a_prompt(tmp_path, capsys, red_cube_run):
    out = _copy_of_red_cube_run(red_cube_run, tmp_path)  # `generate "a red cube" --steps 2`, exit 0
    # argparse puts the first key=value where the prompt would be; all of them are overrides
    code, _, err = run_cli(["generate", "--resume", "--out", str(out), "--quiet", "steps=4", "trainer.log_every=2"],
                           capsys)
    assert code == 0, err
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 4 and "a red cube" in (out / "config.yaml").read_text()


def test_bad_input_subprocess_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dreamer", "generate", "", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ['error: the prompt is empty: give a description such as "a red chair"']


def test_corrupt_checkpoint_is_a_clear_error_and_kept(tmp_path, capsys, red_cube_run):
    out = _copy_of_red_cube_run(red_cube_run, tmp_path)  # `generate "a red cube" --steps 2`, exit 0
    ckpt = out / "checkpoints" / "last.pt"
    ckpt.write_bytes(b"not a checkpoint")
    code, _, err = run_cli(["generate", "--resume", "--out", str(out), "--quiet"], capsys)
    assert code == 2 and "is corrupt" in err and ckpt.read_bytes() == b"not a checkpoint"
    code, _, err = run_cli(["export", str(out)], capsys)
    assert code == 2 and "is corrupt" in err


def test_nan_loss_stops_keeps_last_good_checkpoint(tmp_path, tiny_run, capsys, monkeypatch):
    from dreamer.guidance.sds import SDS

    original = SDS.forward

    def poisoned(self, images, embedding, cameras, step, **render_inputs):
        out = original(self, images, embedding, cameras, step, **render_inputs)
        if step >= 3:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(SDS, "forward", poisoned)
    out = tmp_path / "run"
    code, _, err = run_cli(["generate", "a red cube", "--steps", "6", "--out", str(out), "--quiet", *tiny_run], capsys)
    assert code == 1 and "loss became nan at step 4" in err.lower()
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["representation"].values() if v.is_floating_point())


def _interrupt_at(step):
    def on_progress(event):
        if event.step == step:
            raise KeyboardInterrupt

    return on_progress


def test_interrupt_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_run):
    import dreamer

    common = dict(steps=6, trainer__progress=False, export__video=False, trainer__evaluate=False)
    full = dreamer.generate("a red cube", out=tmp_path / "full", dotted=tiny_run, **common)
    with pytest.raises(Interrupted, match="interrupted at step 3/6"):
        dreamer.generate("a red cube", out=tmp_path / "cut", dotted=tiny_run, on_progress=_interrupt_at(3), **common)
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=True)["step"] == 3
    resumed = dreamer.generate(out=tmp_path / "cut", resume=True)
    assert resumed.metrics["steps"] == 6 and resumed.metrics["resumed_from"] == 3
    a = torch.load(full.checkpoint, weights_only=True)["representation"]
    b = torch.load(resumed.checkpoint, weights_only=True)["representation"]
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    steps = [json.loads(l)["step"] for l in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_ctrl_c_exit_code_130(tmp_path, tiny_run, capsys, monkeypatch):
    from dreamer.trainer import trainer as trainer_module

    original = trainer_module.Trainer.train_step

    def interrupted_step(self):
        if self.step == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", interrupted_step)
    out = tmp_path / "run"
    code, _, err = run_cli(["generate", "a red cube", "--steps", "5", "--out", str(out), "--quiet", *tiny_run], capsys)
    assert code == 130 and "--resume" in err
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"] == 2


def test_api_surface():
    import dreamer

    assert set(dreamer.__all__) >= {"generate", "export", "evaluate", "Result"}
    assert callable(dreamer.generate) and dreamer.Result.__name__ == "Result"
