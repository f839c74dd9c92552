"""The built wheel works anywhere: built from a copy of the checkout, installed in a clean venv, run
from a folder outside the checkout (presets, a 5-step generate, a prior sample, the web UI answering).

Slow (a venv with torch and the dependencies), so one test does it all. Kept as cheap as it can be
without checking less: pip installs without byte-compiling (`--no-compile`: compiling torch and every
dependency was most of the test's time; Python compiles what it imports, and caches it: the subprocesses run
without PYTHONDONTWRITEBYTECODE, which some machines set, so the later commands do not compile torch, diffusers
and gradio again, several seconds each), the venv borrows the outer pip
(`--without-pip` + `pip --python`), the venv is lent the checkout's torch (see `_lend_torch`), and the
generate run keeps the default preset and the shipped priors but exports at small sizes (every stage still
runs: training, GLB with a baked texture, video, eval).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from ui_support import free_port

REPO = Path(__file__).resolve().parents[1]
TORCH = "torch==" + __import__("torch").__version__.split("+")[0]  # the pinned CPU build the Makefile installed
# the default preset at small export sizes: 9 s instead of 33 (a 1024 px texture, 48 frames at 192 px, a 128³ mesh)
SMALL_EXPORT = ["export.mesh_resolution=32", "export.texture_size=64", "export.video_frames=4",
                "export.video_resolution=32", "export.eval_surface_samples=2000"]
NOT_SHIPPED = {".venv", ".git", ".tools", "runs", "build", "docs", "bench", "tests", "__pycache__", ".pytest_cache"}


def _env(**extra: str) -> dict[str, str]:
    """The subprocesses' environment: nothing borrowed from the checkout, and bytecode cached (see above)."""
    env = {**os.environ, "PYTHONPATH": "", **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _start(args: list[str], cwd: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(**env))


def _finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    """The stdout of a command started with `_start`, which must exit 0."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, proc.args))} exited {proc.returncode}:\n{out[-3000:]}\n{err[-3000:]}"
    return out


def _run(args: list[str], cwd: Path, timeout: float = 600) -> str:
    return _finish(_start(args, cwd), timeout)


def _build_wheel(tmp: Path) -> Path:
    source = tmp / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(REPO, source, ignore=lambda folder, names: [n for n in names if n in NOT_SHIPPED or n.endswith(".egg-info")])
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), "."], source)
    (wheel,) = (tmp / "dist").glob("dreamer-*.whl")
    return wheel


def _lend_torch(venv: Path, folder: Path) -> None:
    """Lend the clean venv the pinned torch build that the Makefile installs first, through a .pth file to a folder
    holding links to torch's packages and its dist-info: pip then finds `torch==<pinned>` installed, as it is on a
    machine that followed the set-up, and still resolves and installs everything else the wheel needs from
    scratch (torch's own dependencies included). Installing torch again was a third of the test's time (unpacking
    about a gigabyte), and every command then compiled the torch modules it imported."""
    import torch

    site = Path(torch.__file__).resolve().parents[1]
    folder.mkdir()
    (dist_info,) = site.glob(f"torch-{torch.__version__}.dist-info")
    for name in ("torch", "torchgen", "functorch", dist_info.name):
        (folder / name).symlink_to(site / name)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (venv / "lib" / version / "site-packages" / "lent-torch.pth").write_text(f"{folder}\n")


def _answers(url: str, proc: subprocess.Popen, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            time.sleep(0.5)
    return False


@pytest.mark.slow(seconds=60)
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("dreamer/configs/default.yaml", "dreamer/assets/priors/tiny/model.safetensors",
                    "dreamer/assets/evaluator/model.safetensors", "dreamer/assets/priors/tiny_motion/model.safetensors",
                    "dreamer/assets/motion_evaluator/model.safetensors", "dreamer/ui/app.py"):
        assert shipped in names, f"{shipped} is not in the wheel"
    assert not any(n.startswith(("tests/", "ui/", "configs/", "assets/")) for n in names), "top-level folders leaked"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    py, dreamer = venv / "bin" / "python", venv / "bin" / "dreamer"
    _lend_torch(venv, tmp_path / "lent-torch")
    # the wheel, its dependencies resolved from scratch, into the clean venv that holds the pinned torch
    installed = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-compile", TORCH, str(wheel)],
                     tmp_path)
    assert "Successfully installed" in installed and "dreamer-" in installed, installed[-2000:]
    assert f"Requirement already satisfied: {TORCH}" in installed, installed[-2000:]  # the lent torch, not another

    away = tmp_path / "elsewhere"  # no configs/, assets/ or ui/ here: everything must come from the wheel
    away.mkdir()
    where = _run([str(py), "-c", "import dreamer, dreamer.resources as r; print(dreamer.__file__); print(r.configs_dir())"], away)
    assert str(venv) in where and str(REPO) not in where, where

    presets = _run([str(dreamer), "presets"], away)
    assert "default" in presets and "dreamgaussian-sds-tiny" in presets

    # three commands at once (they import mostly different packages, so little bytecode is compiled twice):
    # a run of the default preset, a sample of the `tiny` prior, and the web UI
    generate = _start([str(dreamer), "generate", "a red cube", "--steps", "5", "--out", "run", *SMALL_EXPORT], away)
    sample = _start([str(dreamer), "prior", "sample", "a red cube", "--steps", "4", "--views", "2", "--out",
                     "sample.png"], away)
    port = free_port()
    ui = _start([str(dreamer), "ui", "--runs", "ui-runs", "--port", str(port)], away, GRADIO_ANALYTICS_ENABLED="False")
    try:
        answered = _answers(f"http://127.0.0.1:{port}/", ui)
    finally:
        ui.terminate()
        _, err = ui.communicate(timeout=30)
    assert answered, f"the UI never answered:\n{err[-3000:]}"

    out = _finish(generate)
    assert (away / "run" / "model.glb").stat().st_size > 1000 and (away / "run" / "eval.json").is_file(), out
    _finish(sample)
    assert (away / "sample.png").stat().st_size > 100
