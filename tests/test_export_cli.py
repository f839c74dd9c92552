"""`dreamer export` / `api.export` on a real (tiny) run folder: every format, the caps as flags,
one-line errors for bad flags, and the NeRF's colour-query contract."""

import numpy as np
import pytest
import torch
import trimesh
from gltf_validator import assert_valid_gltf

from dreamer import api, cli
from dreamer.errors import UserError
from dreamer.representations.nerf import NeRF, NeRFConfig


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from conftest import TINY_RUN

    out = tmp_path_factory.mktemp("export-cli") / "run"
    with pytest.MonkeyPatch.context() as mp:  # the cache folder conftest gives each test
        mp.setenv("DREAMER_CACHE", str(tmp_path_factory.getbasetemp() / "dreamer-cache"))
        api.generate("a red cube", out=out, steps=2, trainer__progress=False, trainer__evaluate=False,
                     export__video=False, export__texture_size=64, dotted=list(TINY_RUN))
    return out


def run_cli(args, capsys):
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_export_writes_every_format_within_the_caps(run_dir, capsys):
    code, out, err = run_cli(["export", str(run_dir), "--formats", "glb,obj,ply", "--max-faces", "300",
                              "--texture-size", "128"], capsys)
    assert code == 0, err
    printed = [line.rsplit("/", 1)[-1] for line in out.split()]
    assert printed == ["model.glb", "model.obj", "model.mtl", "model_albedo.png", "model.ply"]
    assert_valid_gltf(run_dir / "model.glb")
    glb = trimesh.load(run_dir / "model.glb", force="mesh")
    assert glb.visual.material.baseColorTexture.size == (128, 128)
    assert 0 < len(glb.faces) <= 300
    obj = trimesh.load(run_dir / "model.obj", force="mesh")
    assert obj.visual.material.image.size == (128, 128) and len(obj.faces) == len(glb.faces)
    ply = trimesh.load(run_dir / "model.ply", force="mesh")
    assert len(ply.faces) == len(glb.faces) and ply.visual.kind == "vertex"


def test_texture_can_be_turned_off(run_dir, capsys):
    code, out, err = run_cli(["export", str(run_dir), "--no-texture", "--max-faces", "400"], capsys)
    assert code == 0, err
    assert out.split() == [str(run_dir / "model.glb")]
    assert_valid_gltf(run_dir / "model.glb")
    glb = trimesh.load(run_dir / "model.glb", force="mesh")
    assert glb.visual.kind == "vertex" and len(glb.faces) <= 400


BAD_FLAGS = [
    (["--texture-size", "1000"], "texture size must be a power of two"),
    (["--max-faces", "0"], "max faces must be an integer of at least 100"),
    (["--formats", "glb,fbx"], "unknown export format 'fbx'"),
    (["--padding", "99"], "texture padding must be an integer from 0 to 64"),
    (["--resolution", "0"], "mesh resolution must be a positive integer"),
]


@pytest.mark.parametrize("flags, message", BAD_FLAGS)
def test_bad_export_flags_are_one_line_errors(flags, message, run_dir, capsys):
    before = (run_dir / "model.glb").stat().st_mtime_ns
    code, _, err = run_cli(["export", str(run_dir), *flags], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert (run_dir / "model.glb").stat().st_mtime_ns == before  # nothing rewritten


def test_bad_caps_in_generate_fail_before_training(tmp_path, capsys):
    code, _, err = run_cli(["generate", "a red cube", "--out", str(tmp_path / "r"), "export.texture_size=300"],
                           capsys)
    assert code == 2 and err.strip().splitlines() == [
        "error: texture size must be a power of two from 16 to 8192 (e.g. 1024), got 300"]
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_api_export_takes_the_same_options(run_dir):
    paths = api.export(run_dir, ["obj"], max_faces=200, texture_size=32, padding=1)
    assert set(paths) == {"glb", "obj", "mtl", "texture"}
    assert trimesh.load(paths["glb"], force="mesh").visual.material.baseColorTexture.size == (32, 32)
    with pytest.raises(UserError, match="texture size must be a power of two"):
        api.export(run_dir, texture_size=100)


def test_nerf_colour_at_is_its_albedo_field_chunked():
    torch.manual_seed(0)
    nerf = NeRF(NeRFConfig(grid_resolution=16, chunk=7))
    points = torch.rand(50, 3) * 2 - 1
    colour = nerf.colour_at(points)
    assert colour.shape == (50, 3) and not colour.requires_grad
    assert colour.min() >= 0 and colour.max() <= 1
    torch.testing.assert_close(colour, nerf.query(points)[1].detach())
    assert np.asarray(nerf.colour_at(torch.zeros(0, 3))).shape == (0, 3)
