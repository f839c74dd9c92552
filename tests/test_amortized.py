"""The amortised generator: prompt shards, held-out pairs, one process against two (DDP, float64),
resume, `generate --amortized`, interpolation, and the one-line errors."""

import json
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch

from dreamer import cli
from dreamer.amortized.prompts import (epoch_order, held_out_prompts, load_prompts, sample_generator, shard,
                                       step_prompts, vocabulary_prompts)
from dreamer.errors import UserError

# a small generator and 32 px renders: the loop, not the quality, is under test
SMALL = ["generator.plane_resolution=16", "generator.channels=8", "generator.mapping_width=32", "resolution=32",
         "generator.num_samples=24"]


def run_cli(args, capsys):
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------------------------------ prompts
def test_the_shards_of_an_epoch_are_disjoint_and_cover_every_prompt():
    count, batch, world = 12, 4, 2
    seen = []
    for step in range(count // batch):
        shards = [shard(step_prompts(7, step, batch, count), rank, world) for rank in range(world)]
        assert set(shards[0]).isdisjoint(shards[1]) and all(len(s) == batch // world for s in shards)
        seen += shards[0] + shards[1]
    assert sorted(seen) == list(range(count))  # each prompt exactly once per epoch
    # the next epoch is another permutation of all of them
    second = [i for step in range(3, 6) for i in step_prompts(7, step, batch, count)]
    assert sorted(second) == list(range(count)) and second != seen
    assert epoch_order(7, 0, count) != epoch_order(8, 0, count)


def test_options_of_another_rule_than_the_presets_are_kept():
    from dreamer.amortized.train import make_setup

    setup = make_setup(["guidance.eta=0.0", "guidance.guidance_scale=3.0", "train.steps=5"], guidance="asd")
    assert setup.run.guidance.name == "asd" and setup.train.steps == 5
    assert setup.run.guidance.config.eta == 0.0 and setup.run.guidance.config.guidance_scale == 3.0


def test_randomness_depends_on_seed_step_and_prompt_only():
    a = torch.rand(4, generator=sample_generator(3, 10, 5))
    assert torch.equal(a, torch.rand(4, generator=sample_generator(3, 10, 5)))
    for other in ((4, 10, 5), (3, 11, 5), (3, 10, 6)):
        assert not torch.equal(a, torch.rand(4, generator=sample_generator(*other)))


def test_no_held_out_pair_is_a_training_prompt(tmp_path):
    train, held = vocabulary_prompts(), held_out_prompts()
    assert len(train) == 158 and len(held) == 18 and not set(train) & set(held)
    listed = tmp_path / "prompts.txt"
    paraphrase = held[0].replace("a ", "the ", 1)  # a held-out pair in other words is still held out
    listed.write_text(f"# mine\na red cube\n\n{held[0]}\n{paraphrase}\na wooden spaceship\na red cube\n")
    kept, left_out = load_prompts(str(listed))
    assert kept == ["a red cube", "a wooden spaceship"] and left_out == [held[0], paraphrase]
    only_held = tmp_path / "held.txt"
    only_held.write_text(held[1] + "\n")
    with pytest.raises(UserError, match="no training prompt left"):
        load_prompts(str(only_held))


# ------------------------------------------------------------------------------------------ use
@pytest.fixture(scope="module")
def generator_folder(tmp_path_factory):
    """A generator trained for 4 steps on the vocabulary (one process, in this process)."""
    from dreamer.api import train_amortized

    folder = tmp_path_factory.mktemp("amortized")
    listed = folder / "prompts.txt"
    listed.write_text("a red cube\na blue sphere\na yellow torus\na green sphere\n")  # no held-out pair
    summary = train_amortized(folder / "gen", steps=4, prompts=str(listed), dotted=["train.batch_size=2", *SMALL])
    assert summary.steps == 4 and summary.prompts == 4
    return folder / "gen"


def test_the_frozen_prior_is_not_trained(generator_folder):
    from dreamer.amortized.train import AmortizedTrainer, Processes, make_setup
    from dreamer.amortized.prompts import vocabulary_prompts

    trainer = AmortizedTrainer(generator_folder.parent / "probe", make_setup(SMALL), vocabulary_prompts()[:4],
                               Processes())
    assert not any(p.requires_grad for p in trainer.prior.parameters())
    in_optimizer = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in trainer.model.parameters()}
    weights = torch.load(generator_folder / "generator.pt", weights_only=True)
    assert weights["step"] == 4 and weights["prompts"] == ["a red cube", "a blue sphere", "a yellow torus", "a green sphere"]


def test_generate_amortized_writes_a_normal_run_folder(generator_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(["generate", "a purple cube", "--amortized", str(generator_folder), "--out", str(out),
                                 "export.video_frames=4", "export.video_resolution=32", "export.texture_size=64",
                                 "export.mesh_resolution=32", "export.eval_surface_samples=2000"], capsys)
    assert code == 0, err
    assert "generator forward pass" in stdout
    for name in ("config.yaml", "model.glb", "turntable.mp4", "eval.json", "checkpoints/last.pt"):
        assert (out / name).is_file(), name
    ev = json.loads((out / "eval.json").read_text())
    assert ev["prompt"] == "a purple cube" and 0.0 <= ev["volume_iou"] <= 1.0
    # an ordinary run folder: `dreamer export` reads it back
    code, _, err = run_cli(["export", str(out), "--formats", "obj"], capsys)
    assert code == 0 and (out / "model.obj").is_file(), err
    # different prompts, different assets
    from dreamer.amortized.use import load_generator

    loaded = load_generator(generator_folder)
    planes = loaded.planes(["a purple cube", "a green sphere"])
    assert planes.shape == (2, 3, 8, 16, 16) and not torch.allclose(planes[0], planes[1])


def test_interpolation_writes_a_video_from_start_to_end(generator_folder, tmp_path, capsys):
    video = tmp_path / "morph.mp4"
    code, stdout, err = run_cli(["amortized", "interpolate", str(generator_folder), "a red cube", "a blue sphere",
                                 "--frames", "4", "--out", str(video)], capsys)
    assert code == 0, err
    assert video.is_file() and str(video) in stdout
    frames = iio.imread(video)
    assert frames.shape[0] == 4 and frames.shape[-1] == 3 and frames.min() < 250  # something is drawn
    from dreamer.amortized.use import load_generator, mixed_planes

    loaded = load_generator(generator_folder)
    mixed = mixed_planes(loaded, "a red cube", "a blue sphere", 3)
    ends = loaded.planes(["a red cube", "a blue sphere"])
    assert torch.allclose(mixed[0], ends[0], atol=1e-5) and torch.allclose(mixed[2], ends[1], atol=1e-5)
    assert not torch.allclose(mixed[1], ends[0]) and not torch.allclose(mixed[1], ends[1])


def test_bad_input_is_one_line(generator_folder, tmp_path, capsys):
    code, _, err = run_cli(["generate", "a red cube", "--amortized", str(tmp_path / "none")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no trained generator" in err
    code, _, err = run_cli(["generate", "a red cube", "--amortized", str(generator_folder), "--steps", "3"], capsys)
    assert code == 2 and "forward pass" in err
    code, _, err = run_cli(["amortized", "train", "--out", str(tmp_path / "ref"), "--steps", "1", "prior=reference",
                            "--quiet"], capsys)
    assert code == 2 and "no text features" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["amortized", "interpolate", str(generator_folder), "a red cube", "a blue sphere",
                            "--frames", "1"], capsys)
    assert code == 2 and "--frames" in err
    code, _, err = run_cli(["amortized", "train", "--out", str(tmp_path / "x"), "--prompts", str(tmp_path / "no.txt")],
                           capsys)
    assert code == 2 and "no such file" in err


def test_the_web_ui_makes_an_asset_with_a_trained_generator(generator_folder, tmp_path):
    import shutil

    from dreamer.ui import amortized
    from dreamer.ui.app import Page
    from dreamer.ui.jobs import JobManager

    runs = tmp_path / "runs"
    assert amortized.list_generators(runs) == []
    shutil.copytree(generator_folder, runs / "generators" / "vocab")
    (runs / "generators" / "not-a-generator").mkdir()
    assert amortized.list_generators(runs) == ["vocab"]
    manager = JobManager(runs, max_concurrent=1)
    try:
        page = Page(manager, ["export.video_frames=4", "export.video_resolution=32", "export.texture_size=64",
                              "export.mesh_resolution=32", "export.eval_surface_samples=2000",
                              "steps=3"])  # the server's overrides: export.* apply
        message, model, video, evaluation = page.on_make("vocab", "a purple cube")
        assert message.startswith("Made in one forward pass") and "error" not in message
        assert model.endswith("model.glb") and Path(model).is_file() and Path(model).is_relative_to(runs)
        assert video is not None and Path(video).is_file()
        assert "Evaluation" in evaluation and "volume IoU" in evaluation
        # an ordinary run folder: the History tab lists it
        from dreamer.ui.history import list_runs

        assert any(r.prompt == "a purple cube" for r in list_runs(runs))
        for generator, prompt, expected in ((None, "a red cube", "choose a generator"),
                                            ("nope", "a red cube", "no generator named 'nope'"),
                                            ("vocab", "  ", "the prompt is empty")):
            message, model, video, _ = page.on_make(generator, prompt)
            assert message.startswith("error: ") and expected in message and model is None
        # two prompts: an interpolation video inside the runs folder
        message, video = page.on_blend("vocab", "a red cube", "a blue sphere", 4)
        assert message.startswith("Interpolated a red cube → a blue sphere") and Path(video).is_file()
        assert Path(video).is_relative_to(runs) and Path(video).name == "interpolation.mp4"
        for frames, expected in ((1, "from 2 to 256"), (2.5, "whole number"), (None, "whole number"),
                                 (float("nan"), "whole number"), (10_000, "from 2 to 256")):
            message, video = page.on_blend("vocab", "a red cube", "a blue sphere", frames)
            assert message.startswith("error: frames must be") and expected in message and video is None
        assert page.on_blend("vocab", "", "a blue sphere", 4)[0] == "error: the start prompt is empty"
        assert len([p for p in runs.iterdir() if p.name.endswith("to-a-blue-sphere")]) == 1  # no empty folders left
    finally:
        manager.shutdown()
