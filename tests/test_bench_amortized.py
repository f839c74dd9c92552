"""bench/amortized_arms.py's own pieces: paraphrases that mean the prompt they stand for, the divergence
verdict, and a gradient-norm plot that draws every job in its arm's colour. No training here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def arms():
    spec = importlib.util.spec_from_file_location("amortized_arms", ROOT / "bench" / "amortized_arms.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paraphrases_reword_each_prompt_and_keep_its_object(arms):
    prompts = ["a red chair", "a blue cube", "an orange tree", "a white capsule", "a gray cone", "a pink mug",
               "a green torus"]
    reworded = arms.paraphrases(prompts)
    assert list(reworded.values()) == prompts  # one each, in order
    assert reworded["a photo of a red chair"] == "a red chair" and reworded["a 3d render of a blue cube"] == "a blue cube"
    assert "a green torus" in reworded.values() and "a photo of a green torus" in reworded  # the templates cycle
    assert all(text != canonical for text, canonical in reworded.items())


def test_divergence_names_nan_collapse_and_empty_fields(arms):
    steady = [{"loss": 10.0 + (i % 3)} for i in range(50)]
    made = [{"volume_iou": 0.4, "right_views": 2}]
    empty = [{"volume_iou": 0.0, "right_views": 0}] * 3
    assert arms.divergence(steady, made) == "no"
    assert arms.divergence(steady[:40] + [{"loss": float("nan")}] + steady[:9], made) == "NaN/inf"
    assert arms.divergence(steady[:45] + [{"loss": 500.0}] * 5, made) == "collapsed"
    assert arms.divergence(steady, empty) == "emptied"
    assert arms.divergence([], made) == "no log"


def test_the_gradient_norm_plot_draws_each_job_in_its_arms_colour(arms, tmp_path):
    traces = {f"{arm} K{k} s0": [(s, 10.0 ** (1 + s / 100 + 0.5 * i)) for s in range(0, 200, 5)]
              for i, arm in enumerate(arms.ARMS) for k in (16, 158)}
    pixels = np.asarray(Image.open(arms.grad_norm_plot(traces, tmp_path / "g.png")).convert("RGB"))
    for colour in arms.ARM_COLOURS.values():
        assert (np.abs(pixels.astype(int) - colour).sum(axis=-1) == 0).sum() > 50, colour
