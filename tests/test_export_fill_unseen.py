"""`export.fill_unseen`: filling space no camera sees is an export option, on by default, recorded in eval.json."""

import json

import pytest
import torch

from dreamer.errors import UserError
from dreamer.eval.geometry import geometry_metrics
from dreamer.representations.nerf import NeRF
from dreamer.run_config import RunConfig, load_run_config
from dreamer.shapes import parse_prompt, spec_mesh
from dreamer.shapes.mesh import sdf_grid

R = 64


@pytest.fixture(scope="module")
def shell_density():
    """[R, R, R] density of the library cube's walls with no floor: an upturned bucket, as a NeRF that
    was only ever seen from around and above it fits a solid cube."""
    sdf = torch.from_numpy(sdf_grid(parse_prompt("a red cube"), R))
    y = torch.linspace(-1, 1, R)[None, :, None].expand(R, R, R)
    return ((sdf < 0) & (sdf > -0.08) & (y > -0.3)).float() * 50.0


def shell_nerf(density):
    model = NeRF().eval()
    model.density_grid = lambda resolution=R: density  # the field's density, whatever the grid asked for
    return model


def test_fill_unseen_is_an_export_option_on_by_default():
    assert RunConfig().export.fill_unseen is True
    assert load_run_config(None).export.fill_unseen is True
    assert load_run_config(None, dotted=["export.fill_unseen=false"]).export.fill_unseen is False


def test_a_bad_fill_unseen_value_is_a_one_line_error():
    with pytest.raises(UserError, match="export.fill_unseen") as error:
        load_run_config(None, dotted=["export.fill_unseen=sometimes"])
    assert "\n" not in str(error.value)


def test_to_mesh_fills_an_open_shell_only_when_asked(shell_density):
    model = shell_nerf(shell_density)
    truth = spec_mesh(parse_prompt("a red cube"))
    # volume IoU does not depend on the surface samples (only chamfer, F-scores and normals do): few of them
    filled = geometry_metrics(model.to_mesh(R), truth, samples=1000)
    hollow = geometry_metrics(model.to_mesh(R, fill_unseen=False), truth, samples=1000)
    assert model.fills_unseen
    # walls only: the outside flows in underneath (the fill misses a little: views below the horizon see
    # in). Unsmoothed walls (NeRFConfig.mesh_smoothing is under a cell at R = 64): filled 0.69, hollow 0.26.
    assert filled.volume_iou > 0.65 and hollow.volume_iou < 0.3


@pytest.mark.parametrize("fill", [True, False])
def test_the_export_and_eval_json_follow_the_option(tmp_path, monkeypatch, shell_density, fill):
    from dreamer.eval.geometry import load_mesh, weld
    from dreamer.trainer.outputs import evaluate_outputs, export_outputs
    from dreamer.trainer.run_folder import RunFolder

    class Renders:  # the 2D figures are not what this test is about: skip the eight renders
        def to_dict(self):
            return {"iou": 0.5}

    monkeypatch.setattr("dreamer.eval.metrics.evaluate_representation", lambda *args, **kwargs: Renders())
    settings = ["prompt=a red cube", "export.texture=false", "export.video=false", f"export.mesh_resolution={R}",
                "export.eval_surface_samples=3000"]
    config = load_run_config(None, dotted=settings + ([] if fill else ["export.fill_unseen=false"]))
    model, run = shell_nerf(shell_density), RunFolder(tmp_path)
    paths = export_outputs(config, model, run)
    volume = weld(load_mesh(paths["glb"])).volume
    cube = 0.7 ** 3
    assert (volume > 0.65 * cube) if fill else (volume < 0.4 * cube)  # a solid (0.76 of it), or walls with no floor (0.34)

    evaluate_outputs(config, model, run, step=1)
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["fill_unseen"] is fill and ev["surface_samples"] == 3000  # the distance metrics' points per mesh
    assert (ev["volume_iou"] > 0.65) if fill else (ev["volume_iou"] < 0.3)


def test_too_few_eval_surface_samples_is_a_one_line_error():
    with pytest.raises(UserError, match="export.eval_surface_samples must be at least 100, got 10"):
        load_run_config(None, dotted=["export.eval_surface_samples=10"])
