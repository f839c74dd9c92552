"""Typed regularizer weights: each representation declares its own (`regularizer_weights`), and a
name it does not have is an error with a suggestion — in a preset, a mapping or a key=value override."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from dreamer import registry
from dreamer.errors import UserError
from dreamer.representations.base import AlphaRegularizers
from dreamer.representations.mesh import MeshRegularizers
from dreamer.run_config import build_run_config, load_run_config, refine_stage_config


def test_a_typo_names_the_representation_and_suggests_the_name():
    with pytest.raises(UserError) as err:
        load_run_config("default", None, ["regularizers.sparsty=10"])
    message = str(err.value)
    assert "regularizers: unknown 'sparsty' for nerf; did you mean 'sparsity'?" in message
    assert "(nerf knows: opacity, sparsity)" in message


def test_a_regularizer_of_another_representation_is_an_error():
    with pytest.raises(UserError, match=r"unknown 'sparsity' for mesh .*mesh knows: sdf_sign, laplacian"):
        build_run_config({"representation": "mesh", "regularizers": {"sparsity": 1.0}})
    with pytest.raises(UserError, match="unknown 'sparsity' for mesh"):
        load_run_config("default", None, ["representation=mesh", "regularizers.sparsity=1"])


def test_a_typo_in_a_preset_file_is_an_error(tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text(yaml.safe_dump({"representation": {"name": "gaussians"}, "regularizers": {"opacty": 1.0}}))
    with pytest.raises(UserError, match="unknown 'opacty' for gaussians; did you mean 'opacity'?"):
        load_run_config(str(preset))


def test_weights_are_typed_and_checked():
    config = load_run_config("default", None, ["regularizers.opacity=2"])
    assert config.regularizers == AlphaRegularizers(opacity=2.0, sparsity=1000.0)
    with pytest.raises(UserError, match="regularizers.opacity"):
        load_run_config("default", None, ["regularizers.opacity=lots"])
    with pytest.raises(UserError, match="must map regularizer names to weights"):
        load_run_config("default", None, ["regularizers=3"])


def test_changing_the_representation_keeps_only_the_preset_weights_it_has():
    assert load_run_config("default").regularizers.sparsity > 0  # the preset's NeRF weight
    assert load_run_config("default", None, ["representation=gaussians"]).regularizers.sparsity > 0
    mesh = load_run_config("default", None, ["representation=mesh", "regularizers.laplacian=3"])
    assert mesh.regularizers == MeshRegularizers(laplacian=3.0)


def test_the_refine_stage_weights_are_checked_against_its_representation():
    with pytest.raises(UserError, match="refine.regularizers: unknown 'laplacain' for mesh; did you mean 'laplacian'?"):
        load_run_config("default", None, ["refine.regularizers.laplacain=1"])  # even with refine.steps = 0
    config = load_run_config("default", {"prompt": "a red cube"}, ["refine.steps=2", "refine.regularizers.laplacian=5"])
    stage = refine_stage_config(config, Path("coarse.ply"))  # the mesh file is only read when training starts
    assert stage.regularizers == MeshRegularizers(laplacian=5.0)


def test_a_saved_config_round_trips():
    config = load_run_config("default", {"prompt": "a red cube"})
    data = yaml.safe_load(yaml.safe_dump(config.to_dict(), sort_keys=False))
    assert data["regularizers"] == {"opacity": 0.0, "sparsity": 1000.0}
    assert build_run_config(data).regularizers == config.regularizers


def test_validate_types_a_mapping_set_by_hand():
    config = load_run_config("default", {"prompt": "a red cube"})
    config.regularizers = {"sparsity": 4}
    assert config.validate().regularizers == AlphaRegularizers(sparsity=4.0)
    config.regularizers = {"laplacian": 4}
    with pytest.raises(UserError, match="unknown 'laplacian' for nerf"):
        config.validate()


@pytest.mark.parametrize("name", sorted(registry.REPRESENTATIONS))
def test_every_representation_declares_documented_float_weights_off_by_default(name):
    cls = registry.component_class("representation", name).regularizer_weights
    assert dataclasses.is_dataclass(cls) and cls.__doc__
    for f in dataclasses.fields(cls):
        assert f.type in (float, "float") and f.default == 0.0, f.name
