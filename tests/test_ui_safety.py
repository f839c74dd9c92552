"""The UI's guards: paths stay inside the runs folder, run names are sanitised, configs are validated."""

import os
import re

import pytest
from ui_support import UI_TINY

from dreamer import registry
from dreamer.config import list_presets
from dreamer.errors import UserError
from dreamer.run_config import load_run_config
from dreamer.ui import form
from dreamer.ui.paths import CACHE_NAME, inside_runs, new_run_dir, run_dir_for, runs_root


@pytest.fixture
def runs(tmp_path):
    return runs_root(tmp_path / "runs")


def test_paths_inside_the_runs_folder_pass(runs):
    (runs / "a" / "previews").mkdir(parents=True)
    assert inside_runs(runs, runs / "a" / "model.glb") == runs / "a" / "model.glb"
    assert inside_runs(runs, "a/previews/latest.png") == runs / "a" / "previews" / "latest.png"


@pytest.mark.parametrize("path", ["/etc/passwd", "../secret.txt", "a/../../secret.txt", ".", ""])
def test_paths_outside_the_runs_folder_are_refused(runs, path):
    with pytest.raises(UserError, match="outside the runs folder"):
        inside_runs(runs, path)


def test_a_link_out_of_the_runs_folder_is_refused(runs, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the browser")
    (runs / "a").mkdir()
    os.symlink(secret, runs / "a" / "model.glb")
    with pytest.raises(UserError, match="outside the runs folder"):
        inside_runs(runs, runs / "a" / "model.glb")


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", CACHE_NAME, "/etc", "a b"])
def test_run_names_must_be_plain_folder_names(runs, name):
    with pytest.raises(UserError, match="not a run name"):
        run_dir_for(runs, name)


def test_run_folder_names_from_prompts_are_sanitised_and_unique(runs):
    hostile = new_run_dir(runs, "../../etc/passwd; rm -rf ~")
    assert hostile.parent == runs and hostile.is_dir()
    assert re.fullmatch(r"\d{8}-\d{6}-etc-passwd-rm-rf", hostile.name), hostile.name
    first, second = new_run_dir(runs, "A Red Cube!"), new_run_dir(runs, "A Red Cube!")
    assert first.name.endswith("-a-red-cube") and second.name == f"{first.name}-2"
    assert new_run_dir(runs, "!!!").name.endswith("-run")
    assert run_dir_for(runs, first.name) == first


def test_the_runs_folder_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        runs_root(tmp_path / "file")


def test_choices_come_from_the_registry_and_configs():
    assert form.preset_choices() == list_presets()
    for kind, table in registry.TABLES.items():
        assert [name for _, name in form.component_choices(kind)] == list(table)
    assert form.EXTRA_FORMATS == ("obj", "ply")


def test_form_values_win_over_server_overrides_over_the_preset():
    start = form.defaults_for("default", UI_TINY)
    preset_steps = load_run_config("default").steps
    assert (start.prior, start.resolution, start.steps) == ("reference", 16, preset_steps)  # the preset: tiny-3d, 64 px
    start.prompt, start.steps, start.formats = "  a red cube ", 12.0, ["ply"]
    config = form.resolve_form(start, UI_TINY)
    assert (config.prompt, config.steps, config.prior.name, config.prior.config.image_size) == ("a red cube", 12,
                                                                                                 "reference", 16)
    assert config.export.formats == ["glb", "ply"]
    start.prior = "tiny"  # another prior: the server's reference-prior options no longer apply
    assert form.resolve_form(start, UI_TINY).prior.name == "tiny"
    start.steps = 2.5
    with pytest.raises(UserError, match="steps must be a whole number"):
        form.resolve_form(start, UI_TINY)


def test_server_overrides_are_checked_once_with_a_one_line_error():
    assert form.check_overrides(["steps=5"]) == ["steps=5"]
    with pytest.raises(UserError, match="unknown config key 'stepz'"):
        form.check_overrides(["stepz=5"])


def test_yaml_round_trip_and_inline_errors():
    start = form.defaults_for("default", UI_TINY)
    start.prompt = "a red cube"
    text = form.config_to_yaml(form.resolve_form(start, UI_TINY))
    assert form.yaml_problem(text) is None
    assert form.config_from_yaml(text).prior.config.num_views == 8
    assert form.yaml_problem(text.replace("\nseed:", "\nsed:")) == "unknown config key 'sed' (did you mean 'seed'?)"
    steps = f"steps: {load_run_config('default').steps}\n"
    assert steps in text
    assert form.yaml_problem(text.replace(steps, "steps: many\n")) == (
        "config key 'steps' must be an integer, got 'many'")
    assert form.yaml_problem(text.replace("prompt: a red cube", "prompt: ''")).startswith("the prompt is empty")
    assert form.yaml_problem("prompt: [a").startswith("the config is not valid YAML at line 1")
    assert form.yaml_problem("- a list") == (
        "the config must be a YAML mapping of keys to values (e.g. `prompt: a red cube`)")
    assert form.yaml_problem("prompt: x\nguidance: magic").startswith("unknown guidance 'magic': choose one of")
    for problem in (form.yaml_problem("- a"), form.yaml_problem("prompt: [a")):
        assert "\n" not in problem and "Traceback" not in problem
