"""The animated shape library (issue 22, section 1): motions, the parser, per-time ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dreamer.cameras import Camera, clip_cameras, frame_times, turntable
from dreamer.errors import UserError
from dreamer.shapes import ObjectSpec, render_spec
from dreamer.shapes.animated import motion_centroids, motion_mesh, motion_meshes, render_motion
from dreamer.shapes.motions import AMPLITUDE, MOTIONS, PULSE, SWAY_DEGREES, MotionSpec
from dreamer.shapes.prompt import motion_vocabulary_problem, parse_motion_prompt

CUBE = ObjectSpec("cube", "red")


def test_six_motions_loop_and_stay_in_the_unit_cube():
    assert set(MOTIONS) == {"spinning", "bouncing", "sliding", "swaying", "pulsing", "orbiting"}
    probe = torch.tensor([[0.6, 0.0, 0.0], [0.0, 0.6, 0.0], [0.0, -0.6, 0.0], [0.0, 0.0, 0.6], [0.35, 0.35, 0.35]])
    for name, motion in MOTIONS.items():
        start, end = motion.pose(0.0).matrix(), motion.pose(1.0).matrix()
        assert torch.allclose(start, end, atol=1e-5), name  # it loops
        times = torch.linspace(0, 1, 33)
        pose = motion.pose(times)
        for k in range(len(times)):
            world = pose.to_world(probe, k)
            assert world.abs().max() <= 1.0, (name, float(times[k]))
            assert torch.allclose(pose.to_canonical(world, k), probe, atol=1e-5)  # the inverse is exact


def test_each_motion_moves_as_documented():
    x = torch.tensor([[0.3, 0.0, 0.0]])
    quarter = lambda name: MOTIONS[name].pose(0.25)  # noqa: E731
    # spinning: a quarter turn about +Y takes +X to −Z (right-handed)
    assert torch.allclose(quarter("spinning").to_world(x), torch.tensor([[0.0, 0.0, -0.3]]), atol=1e-6)
    # bouncing: parabolic hop, top (height AMPLITUDE) half-way, on the ground at 0
    assert float(MOTIONS["bouncing"].pose(0.5).translation[0, 1]) == pytest.approx(AMPLITUDE)
    assert float(MOTIONS["bouncing"].pose(0.0).translation[0, 1]) == 0.0
    assert float(quarter("sliding").translation[0, 0]) == pytest.approx(AMPLITUDE)
    assert float(quarter("pulsing").scale[0]) == pytest.approx(1 + PULSE)
    orbit = MOTIONS["orbiting"].pose(torch.linspace(0, 1, 9)[:-1]).translation
    assert torch.allclose(orbit.norm(dim=-1), torch.full((8,), AMPLITUDE), atol=1e-6)  # on a circle
    sway = quarter("swaying")
    base = torch.tensor([[0.0, -0.6, 0.0]])
    assert torch.allclose(sway.to_world(base), base, atol=1e-6)  # rocks about its base
    top = sway.to_world(torch.tensor([[0.0, 0.4, 0.0]]))[0]
    assert math.degrees(math.atan2(-float(top[0]), float(top[1]) + 0.6)) == pytest.approx(SWAY_DEGREES, abs=1e-3)


@pytest.mark.parametrize("prompt, shape, colour, motion", [
    ("a red cube bouncing", "cube", "red", "bouncing"),
    ("a bouncing red cube", "cube", "red", "bouncing"),
    ("A green box hopping up and down.", "cube", "green", "bouncing"),
    ("a blue chair spins", "chair", "blue", "spinning"),
    ("a yellow torus rotating", "torus", "yellow", "spinning"),
    ("a pink sphere sliding from side to side", "sphere", "pink", "sliding"),
    ("a tree rocking", "tree", "gray", "swaying"),
    ("a purple ball pulsating", "sphere", "purple", "pulsing"),
    ("an orange mug circling around", "mug", "orange", "orbiting"),
    ("a red cube", "cube", "red", "still"),
])
def test_the_parser_learns_motions_and_synonyms(prompt, shape, colour, motion):
    spec = parse_motion_prompt(prompt)
    assert (spec.spec.shape, spec.spec.colour, spec.motion) == (shape, colour, motion)
    assert motion_vocabulary_problem(prompt) is None


def test_canonical_prompt():
    assert parse_motion_prompt("a bouncing red box").prompt == "a red cube bouncing"
    assert MotionSpec(CUBE).prompt == "a red cube"


@pytest.mark.parametrize("prompt, message", [
    ("a red cube dancing", "unknown word 'dancing'"),
    ("a red cube spinning and bouncing", "names 2 motions (spinning, bouncing)"),
    ("a bouncing", "no shape named"),
    ("a red dragon spinning", "unknown word 'dragon'"),
])
def test_the_parser_errors_in_one_line_with_the_motions(prompt, message):
    with pytest.raises(UserError) as err:
        parse_motion_prompt(prompt)
    text = str(err.value)
    assert message in text and "\n" not in text
    if "motions (" not in message:
        assert "known motions are spinning, bouncing, sliding, swaying, pulsing, orbiting" in text
    assert motion_vocabulary_problem(prompt)


def test_still_renders_equal_the_static_library():
    cams = turntable(3, 32).with_time([0.0, 0.3, 0.7])
    moving = render_motion(MotionSpec(CUBE), cams)
    static = render_spec(CUBE, cams)
    assert torch.equal(moving.rgb, static.rgb) and torch.equal(moving.alpha, static.alpha)


def test_a_motion_render_is_the_static_object_moved():
    """Sliding by +0.3 in x seen from the front = the static cube seen from a camera moved by −0.3."""
    front = turntable(1, 48, elevation=0.0)
    moved = render_motion(MotionSpec(CUBE, "sliding"), front.with_time(0.25))
    c2w = front.c2w.clone()
    c2w[:, 0, 3] -= AMPLITUDE
    shifted = render_spec(CUBE, Camera(c2w, front.fovy, 48, 48))
    assert torch.allclose(moved.alpha, shifted.alpha)
    assert (moved.rgb - shifted.rgb).abs().max() < 1e-4


def test_mixed_times_render_like_each_time_alone():
    spec = MotionSpec(ObjectSpec("chair", "blue"), "spinning")
    cams = clip_cameras(turntable(2, 24), frame_times(3, 0.1))  # 6 cameras, 3 times
    together = render_motion(spec, cams)
    for k in range(len(cams)):
        alone = render_motion(spec, cams[k])
        assert torch.equal(together.rgb[k], alone.rgb[0])
    assert not torch.equal(together.alpha[0], together.alpha[1])  # the chair turned


def test_per_frame_meshes_follow_the_pose():
    spec = MotionSpec(CUBE, "pulsing")
    meshes = motion_meshes(spec, 4, resolution=32)
    volumes = [m.volume for m in meshes]
    scales = [1.0, 1 + PULSE, 1.0, 1 - PULSE]
    for v, s in zip(volumes, scales):
        assert v == pytest.approx(volumes[0] * s ** 3, rel=1e-6)
    assert all(len(m.vertices) == len(meshes[0].vertices) for m in meshes)  # fixed topology
    bouncing = MotionSpec(CUBE, "bouncing")
    top = motion_mesh(bouncing, 0.5, resolution=32)
    assert top.bounds[0, 1] == pytest.approx(meshes[0].bounds[0, 1] + AMPLITUDE, abs=1e-5)
    centroids = motion_centroids(MotionSpec(CUBE, "orbiting"), [0.0, 0.25], resolution=32)
    assert np.allclose(centroids, [[0.0, 0.0, AMPLITUDE], [AMPLITUDE, 0.0, 0.0]], atol=1e-3)
