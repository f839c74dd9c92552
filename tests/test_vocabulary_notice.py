"""Prompts the embedded priors do not know: a notice before any work, in the API, the CLI and the UI."""

import warnings

import pytest
from ui_support import UI_TINY

from dreamer import api, cli
from dreamer.errors import OutOfVocabularyWarning, UserError
from dreamer.shapes import ObjectSpec, parse_prompt
from dreamer.shapes.prompt import unknown_words, vocabulary_problem
from dreamer.ui.app import Page
from dreamer.ui.jobs import JobManager

TINY_RUN = ["--steps", "1", "resolution=16", "export.video=false", "export.texture=false",
            "export.mesh_resolution=32", "trainer.evaluate=false"]


@pytest.mark.parametrize("prompt, spec", [("a crimson cube", ObjectSpec("cube", "red")),
                                          ("the emerald torus", ObjectSpec("torus", "green")),
                                          ("a snow white mug", ObjectSpec("mug", "white")),
                                          ("an ebony box", ObjectSpec("cube", "black"))])
def test_colour_paraphrases_are_library_prompts(prompt, spec):
    assert parse_prompt(prompt) == spec and vocabulary_problem(prompt) is None


def test_the_problem_names_the_unknown_words():
    assert unknown_words("a corgi wearing a party hat") == ["corgi", "wearing", "party", "hat"]
    assert vocabulary_problem("a red cube, a blue sphere") == "2 shapes (cube, sphere) where one object is known"
    assert vocabulary_problem("a red") == "no shape named"


def test_the_notice_says_what_is_unknown_what_is_known_and_what_to_use_instead():
    notice = api.prompt_notice("a corgi wearing a party hat", "tiny")
    assert "'corgi', 'wearing', 'party', 'hat'" in notice and "\n" not in notice
    assert "16 shapes (cube, sphere" in notice and "11 colours (red" in notice and "crimson" in notice
    assert "--prior sd21-base" in notice
    assert api.prompt_notice("a red cube", "tiny") is None
    assert api.prompt_notice("a corgi", "sd21-base") is None  # a real prior knows words


def test_the_priors_declare_whether_they_are_embedded_and_exact():
    assert [api.is_embedded_prior(n) for n in ("tiny", "tiny-mv", "tiny-3d", "reference", "reference-video")] == [True] * 5
    assert [api.is_exact_prior(n) for n in ("reference", "reference-video", "tiny", "tiny-3d")] == [True, True, False, False]
    assert not any(f(n) for f in (api.is_embedded_prior, api.is_exact_prior) for n in ("sd21-base", "animatediff", "nope"))
    assert api.prompt_notice("a corgi", "tiny-3d") is not None and api.prompt_notice("a corgi", "nope") is None


def test_every_embedded_image_prior_gets_the_prompt_without_its_motion():
    from dreamer.trainer.four_d import image_prompt

    for name in ("tiny", "tiny-mv", "tiny-3d", "reference"):
        assert image_prompt("a red cube bouncing", name) == "a red cube"
    assert image_prompt("a red cube bouncing", "sd15") == "a red cube bouncing"  # a real prior reads it all


def test_api_warns_for_tiny_and_the_warning_can_be_an_error(tmp_path):
    out = tmp_path / "corgi"
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfVocabularyWarning)
        with pytest.raises(OutOfVocabularyWarning, match="unknown words 'corgi', 'hat'"):
            api.generate("a corgi hat", out=out, steps=1)
    assert not out.exists()  # raised before any work


def test_api_refuses_out_of_vocabulary_prompts_for_the_reference_prior(tmp_path):
    with pytest.raises(UserError, match="outside what the embedded 'reference' prior knows"):
        api.generate("a corgi", config="reference", out=tmp_path / "corgi", steps=1)
    assert not (tmp_path / "corgi").exists()


def test_cli_warns_in_one_line_for_tiny_and_goes_on(tmp_path, capsys):
    assert cli.main(["generate", "a corgi", "--out", str(tmp_path / "corgi"), "--quiet", *TINY_RUN]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "unknown word 'corgi'" in lines[0]
    assert (tmp_path / "corgi" / "model.glb").exists() or "mesh is empty" in err


def test_cli_exits_2_for_the_reference_prior(tmp_path, capsys):
    assert cli.main(["generate", "a corgi", "--config", "reference", "--out", str(tmp_path / "c"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: prompt 'a corgi' is outside") and "\n" not in err


def test_ui_shows_the_notice_beside_the_form_and_refuses_reference_jobs(tmp_path):
    manager = JobManager(tmp_path / "runs", max_concurrent=1)
    try:
        page = Page(manager, list(UI_TINY))
        shown = page.on_notice("a corgi", "tiny")
        assert shown.startswith("**⚠ Out of vocabulary — will run, but not as asked.**") and "'corgi'" in shown
        assert page.on_notice("a corgi", "reference").startswith("**⚠ Out of vocabulary — cannot be generated.**")
        assert page.on_notice("a crimson cube", "tiny") == "" and page.on_notice("", "tiny") == ""
        fields = ["a corgi", "", "reference", "sds", "nerf", "reference", 4, 0, 16, []]
        message, _ = page.on_generate(*fields, False, "")
        assert message.startswith("error: prompt 'a corgi' is outside what the embedded 'reference' prior knows")
        assert manager.jobs() == []
    finally:
        manager.shutdown()
