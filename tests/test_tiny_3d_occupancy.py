"""The lifted prior's 3D loss: voxel opacities fitted to the library object's own occupancy."""

from __future__ import annotations

import pytest
import torch

from dreamer.errors import UserError
from dreamer.priors.schedule import make_alphas_cumprod
from dreamer.priors.tiny.data import TinyDataConfig
from dreamer.priors.tiny.lifted import LiftedConfig, LiftedDenoiser
from dreamer.priors.tiny.occupancy import OccupancyTargets, occupancy_loss, voxel_occupancy
from dreamer.priors.tiny.train import TinyTrainConfig, _Run, _start_from
from dreamer.priors.tiny.weights import TinyModelInfo, save_weights
from dreamer.shapes.spec import ObjectSpec, sdf_and_colour

from tiny_prior_parts import HashEncoder

ACP = make_alphas_cumprod(1000, "linear", 1e-4, 0.02)
SMALL = LiftedConfig(grid=8, channels=(8, 16), code_dim=32, samples_per_ray=8)


def test_voxel_occupancy_is_one_inside_zero_outside_and_a_half_on_the_surface():
    net = LiftedDenoiser(LiftedConfig(grid=24), ACP)
    spec = ObjectSpec(shape="chair", colour="red")
    centres = net.voxel_centres("cpu", torch.float32)
    spacing = net.config.voxel_spacing
    assert spacing == pytest.approx(1.2 / 23)
    occupancy = voxel_occupancy(spec, centres, spacing)
    sdf = sdf_and_colour(spec, centres.reshape(-1, 3))[0].reshape(24, 24, 24)
    assert occupancy.shape == (24, 24, 24)
    assert bool((occupancy[sdf < -spacing / 2] == 1).all()) and bool((occupancy[sdf > spacing / 2] == 0).all())
    torch.testing.assert_close(occupancy[sdf.abs() < spacing / 2], 0.5 - sdf[sdf.abs() < spacing / 2] / spacing)
    # indexed z, y, x as the volume: the chair's backrest stands at −z, so the top rows hold voxels only there
    top = occupancy[:, centres[0, :, 0, 1] > 0.3, :]
    assert float(top[:12].sum()) > 0 and float(top[12:].sum()) == 0


def test_targets_are_computed_once_per_shape_and_the_loss_is_zero_only_at_the_truth():
    net = LiftedDenoiser(SMALL, ACP)
    targets = OccupancyTargets(net.voxel_centres("cpu", torch.float32), SMALL.voxel_spacing)
    specs = [ObjectSpec("cube", "red"), ObjectSpec("cube", "blue"), ObjectSpec("mug", "red")]
    batch = targets(specs)
    assert batch.shape == (3, 8, 8, 8) and len(targets._by_shape) == 2
    torch.testing.assert_close(batch[0], batch[1])  # the colour does not change where the object is
    binary = (batch > 0.5).float()
    assert float(occupancy_loss(binary, binary)) < 1e-3
    assert float(occupancy_loss(1 - binary, binary)) > 5.0


def test_skip_surface_leaves_the_voxels_the_surface_crosses_to_the_image_loss():
    net = LiftedDenoiser(LiftedConfig(grid=24), ACP)
    target = voxel_occupancy(ObjectSpec("table", "red"), net.voxel_centres("cpu", torch.float32),
                             net.config.voxel_spacing)[None]
    surface = (target > 0) & (target < 1)
    assert int(surface.sum()) > 100  # the tabletop and the legs are mostly surface voxels at 24³
    opaque_thin_parts = torch.where(surface, torch.ones_like(target), target)  # thin parts opaque, as they render
    assert float(occupancy_loss(opaque_thin_parts, target, skip_surface=True)) < 1e-3
    assert float(occupancy_loss(opaque_thin_parts, target)) > 0.05  # the fractional target calls them translucent
    wrong_outside = torch.where(target == 0, torch.full_like(target, 0.5), target)  # ... but empty space still counts
    assert float(occupancy_loss(wrong_outside, target, skip_surface=True)) > 0.5


def _config(volume_weight: float, **kw) -> TinyTrainConfig:
    data = TinyDataConfig(image_size=16, supersample=1, shapes=("cube", "chair"), colours=("red", "blue"),
                          views_per_set=4, source="live", fovy_range=(38.0, 48.0))
    unet = TinyModelInfo().unet
    unet.image_size = 16
    return TinyTrainConfig(architecture="lifted", lifted=SMALL, unet=unet, steps=2, batch_size=8, camera_dropout=0.0,
                           warmup_steps=1, data=data, volume_weight=volume_weight, **kw)


def test_the_volume_term_adds_to_the_loss_of_the_same_step():
    from dreamer.priors.tiny.text import CaptionBank
    from dreamer.priors.tiny.view_sets import ViewSetData

    losses = {}
    for weight in (0.0, 2.0):
        config = _config(weight)
        data = ViewSetData(config.data)
        captions = CaptionBank(data.captions, HashEncoder())
        run = _Run(config, torch.device("cpu"))
        losses[weight] = run.train_step(data, captions)  # same seed: same weights, batch, t and noise
    assert losses[2.0] > losses[0.0] + 0.1  # a fresh volume is far from any object's occupancy


def test_the_training_record_names_the_volume_term(tmp_path):
    from dreamer.priors.tiny.train import train

    train(_config(2.0, log_every=1), tmp_path, progress=False, encoder=HashEncoder(), command="test")
    assert "loss (x̂0 MSE + 2 × voxel-occupancy BCE):" in (tmp_path / "TRAINING.md").read_text()
    train(_config(2.0, log_every=1, volume_skip_surface=True), tmp_path / "skip", progress=False,
          encoder=HashEncoder(), command="test")
    assert "x̂0 MSE + 2 × voxel-occupancy BCE (whole voxels only)" in (tmp_path / "skip" / "TRAINING.md").read_text()


def test_refusals_and_a_lifted_start_from_shipped_weights(tmp_path):
    with pytest.raises(UserError, match="only the lifted network"):
        TinyTrainConfig(volume_weight=1.0)
    with pytest.raises(UserError, match="volume_weight must be >= 0"):
        _config(-1.0)
    source = LiftedDenoiser(SMALL, ACP)
    info = TinyModelInfo(unet=_config(0.0).unet, lifted=SMALL)
    save_weights(tmp_path / "w", source, info)
    target = LiftedDenoiser(SMALL, ACP)
    _start_from(target, str(tmp_path / "w"))
    for (k, a), b in zip(target.state_dict().items(), source.state_dict().values()):
        torch.testing.assert_close(a, b.half().float(), msg=k)  # weights ship in fp16
    with pytest.raises(UserError, match="holds another network"):
        _start_from(LiftedDenoiser(LiftedConfig(grid=12, channels=(8, 16), code_dim=32, samples_per_ray=8), ACP),
                    str(tmp_path / "w"))
