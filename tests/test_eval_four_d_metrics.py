"""evaluate_motion against fake 4D results built from the ground truth: the truth itself scores
perfectly, a result that never moves scores badly, a jittering one flickers."""

import json

import numpy as np
import pytest
import torch

from dreamer.errors import UserError
from dreamer.eval import MOTION_SUMMARY_KEYS as motion_summary_keys
from dreamer.eval.four_d_metrics import MotionEval, best_shift, evaluate_motion, motion_is_visible
from dreamer.representations.base import Animated, RenderOutput, Representation
from dreamer.shapes import parse_prompt, spec_mesh
from dreamer.shapes.animated import render_motion
from dreamer.shapes.motions import MotionSpec

pytestmark = pytest.mark.slow(seconds=10)  # a mid-sized file: scheduled early (tests/conftest.py)

SMALL = dict(eval_frames=8, views=2, resolution=32, mesh_resolution=32, volume_resolution=32)


class FakeAnimated(Representation):
    """A 4D result drawn from the library: `mspec` moved by its pose, plus a fixed offset per frame."""

    is_dynamic = True

    def __init__(self, mspec: MotionSpec, offsets: torch.Tensor | None = None):
        super().__init__()
        self.mspec = mspec
        self.offsets = offsets  # [F, 3] world shift of frame k (None: none)

    def _offset(self, time: torch.Tensor) -> torch.Tensor:
        if self.offsets is None:
            return torch.zeros(len(time), 3)
        frames = len(self.offsets)
        return self.offsets[torch.round(time * frames).long() % frames]

    def render(self, camera, background=None):
        # moving the object by d is moving the camera by −d
        c2w = camera.c2w.clone()
        c2w[:, :3, 3] -= self._offset(camera.times.cpu()).to(c2w)
        shifted = type(camera)(c2w, camera.fovy, camera.width, camera.height, camera.time)
        out = render_motion(self.mspec, shifted, background=(1.0, 1.0, 1.0), supersample=2)
        return RenderOutput(out.rgb, out.alpha, out.depth)

    def to_mesh(self, resolution: int = 128):
        return spec_mesh(self.mspec.spec, resolution)

    def deform_points(self, points, time):
        moved = self.mspec.pose(time).to_world(points)
        return moved + self._offset(torch.tensor([float(time)])).to(moved)

    def splat_arrays_at(self, time):
        raise TypeError("a fake library result has no splats")

    def deformation_state(self):
        return {}

    def set_stage(self, stage):
        pass


def oracle(prompt: str) -> FakeAnimated:
    spec = parse_prompt(prompt.rsplit(" ", 1)[0])
    return FakeAnimated(MotionSpec(spec, prompt.rsplit(" ", 1)[1]))


def static(prompt: str) -> FakeAnimated:
    """The prompt's object at its canonical pose at every time."""
    return FakeAnimated(MotionSpec(oracle(prompt).mspec.spec, "still"))


class Phased(FakeAnimated):
    """The truth's loop started `shift` frames of 8 ahead: a right motion at another phase."""

    def __init__(self, mspec: MotionSpec, shift: int, frames: int = 8):
        super().__init__(mspec)
        self.phase = shift / frames

    def render(self, camera, background=None):
        ahead = type(camera)(camera.c2w, camera.fovy, camera.width, camera.height, (camera.times + self.phase) % 1.0)
        return super().render(ahead, background)

    def deform_points(self, points, time):
        return super().deform_points(points, (float(time) + self.phase) % 1.0)


def test_best_shift_finds_the_circular_offset():
    score = torch.zeros(4, 4)
    for k in range(4):
        score[k, (k + 3) % 4] = 1.0  # result frame k shows truth frame k + 3
    shift, per_frame = best_shift(score)
    assert shift == 3 and per_frame.tolist() == [1.0] * 4
    assert best_shift(torch.eye(4))[0] == 0


def test_a_right_loop_at_another_phase_scores_right_only_phase_invariantly():
    truth = oracle("a red cube bouncing").mspec
    ahead = evaluate_motion(Phased(truth, 3), truth, "cpu", **SMALL)
    assert ahead.trajectory_error > 0.1 and ahead.mean_frame_iou < 0.9  # fixed phase: wrong
    assert ahead.trajectory_error_phase < 0.005 and ahead.mean_frame_iou_phase == pytest.approx(1.0)
    assert ahead.phase_shift_iou == ahead.phase_shift_trajectory == 3
    right = evaluate_motion(oracle("a red cube bouncing"), truth, "cpu", **SMALL)
    assert right.phase_shift_iou == right.phase_shift_trajectory == 0
    assert right.mean_frame_iou_phase == right.mean_frame_iou and right.trajectory_error_phase == right.trajectory_error
    # a result that never moves is not rescued by any phase
    still = evaluate_motion(static("a red cube bouncing"), truth, "cpu", **SMALL)
    assert still.trajectory_error_phase > 0.1 and still.mean_frame_iou_phase < 0.9


def test_a_spin_no_image_shows_has_no_amplitude_ratio_and_says_why():
    sphere = oracle("a red sphere spinning")
    result = evaluate_motion(sphere, sphere.mspec, "cpu", **SMALL)
    assert result.amplitude_gt > 0.1  # its vertices do move
    assert result.amplitude_ratio is None and "no image shows this motion" in result.amplitude_note
    cube = oracle("a red cube spinning")
    seen = evaluate_motion(cube, cube.mspec, "cpu", **SMALL)
    assert seen.amplitude_ratio == pytest.approx(1.0, abs=1e-4) and seen.amplitude_note is None
    assert not motion_is_visible(sphere.mspec, resolution=32) and motion_is_visible(cube.mspec, resolution=32)
    assert motion_is_visible(oracle("a red sphere bouncing").mspec, resolution=32)


def test_fake_is_animated():
    assert isinstance(oracle("a red cube bouncing"), Animated)


@pytest.mark.parametrize("prompt", ["a red cube bouncing", "a blue chair spinning"])
def test_oracle_scores_perfectly(prompt):
    result = evaluate_motion(oracle(prompt), oracle(prompt).mspec, "cpu", **SMALL)
    assert len(result.per_frame_iou) == 8 and len(result.per_frame_volume_iou) == 8
    assert min(result.per_frame_iou) == pytest.approx(1.0)
    assert min(result.per_frame_volume_iou) > 0.97  # float32 vs float64 posing moves a few cells
    assert result.trajectory_error < 0.005  # a few boundary cells of 1/16
    assert result.amplitude_ratio == pytest.approx(1.0, abs=1e-4)
    assert result.flicker == pytest.approx(0.0, abs=1e-7)
    assert result.motion == oracle(prompt).mspec.motion and result.frames == 8


@pytest.mark.parametrize("prompt, error", [("a red cube bouncing", 0.197), ("a red cube sliding", 0.181),
                                           ("a red cube orbiting", 0.3)])
def test_static_result_for_a_moving_prompt_scores_badly(prompt, error):
    truth = oracle(prompt).mspec
    result = evaluate_motion(static(prompt), truth, "cpu", **SMALL)
    # the centroid stays put while the truth's moves by the motion's mean offset
    assert result.trajectory_error > 0.05
    assert result.trajectory_error == pytest.approx(error, abs=0.02)
    assert result.amplitude == 0.0 and result.amplitude_ratio == 0.0
    assert result.mean_frame_iou < 0.9 and result.mean_frame_volume_iou < 0.8
    assert result.per_frame_iou[0] > 0.99 or prompt.endswith("orbiting")  # frame 0 is the rest pose


def test_static_spinning_cube_has_no_amplitude_and_loses_iou():
    truth = oracle("a red cube spinning").mspec
    moving = evaluate_motion(oracle("a red cube spinning"), truth, "cpu", **SMALL)
    still = evaluate_motion(static("a red cube spinning"), truth, "cpu", **SMALL)
    # the spin leaves the centroid in place (trajectory error cannot see it) but moves every vertex
    assert still.trajectory_error < 0.02
    assert still.amplitude_ratio == 0.0 and moving.amplitude_ratio == pytest.approx(1.0, abs=1e-4)
    assert still.mean_frame_iou < moving.mean_frame_iou - 0.03
    # a cube matches itself after a quarter turn (frames 0, 2, 4, 6), not at the eighths between
    assert min(still.per_frame_iou[1::2]) < 0.95 and min(still.per_frame_iou[0::2]) > 0.99


def test_jittering_oracle_flickers():
    prompt = "a red cube sliding"
    offsets = torch.from_numpy(np.random.default_rng(0).uniform(-0.06, 0.06, (8, 3))).float()
    jitter = FakeAnimated(oracle(prompt).mspec, offsets)
    result = evaluate_motion(jitter, jitter.mspec, "cpu", **SMALL)
    assert result.flicker > 0.002
    assert 0.0 < result.trajectory_error < 0.15
    assert result.amplitude_ratio > 1.0  # the jitter adds to the true motion


def test_frame_vertices_replace_the_deformation():
    fake = oracle("a red cube bouncing")
    mesh = fake.to_mesh(32)
    lifted = [np.asarray(mesh.vertices) + [0.0, 0.5, 0.0]] * 8  # the canonical cube, 0.5 up, never moving
    result = evaluate_motion(fake, fake.mspec, "cpu", mesh=mesh, frame_vertices=lifted, **SMALL)
    assert result.amplitude_ratio == pytest.approx(0.0, abs=1e-9)
    assert result.per_frame_trajectory_error[0] == pytest.approx(0.5, abs=0.02)  # frame 0: at rest
    assert min(result.per_frame_iou) == pytest.approx(1.0)  # the renders are untouched


def test_still_prompt_has_no_amplitude_ratio_and_dict_keys():
    fake = oracle("a red cube still")
    result = evaluate_motion(fake, fake.mspec, "cpu", eval_frames=2, views=1, resolution=16, mesh_resolution=16,
                             volume_resolution=16)
    assert isinstance(result, MotionEval)
    assert result.amplitude_ratio is None and result.amplitude_gt < 1e-3 and result.amplitude_note is None
    data = json.loads(json.dumps(result.to_dict()))
    for key in ("per_frame_iou", "per_frame_volume_iou", "trajectory_error", "amplitude_ratio", "flicker",
                "mean_frame_iou", "mean_frame_volume_iou", "motion", "frames"):
        assert key in data
    assert set(motion_summary_keys) <= set(data)
    assert all(not isinstance(data[k], list) for k in motion_summary_keys)
    assert data["motion"] == "still" and data["frames"] == 2


def test_rejects_bad_arguments():
    fake = oracle("a red cube bouncing")
    with pytest.raises(UserError, match="at least 2 frames"):
        evaluate_motion(fake, fake.mspec, eval_frames=1)
    with pytest.raises(UserError, match="at least 1 view"):
        evaluate_motion(fake, fake.mspec, views=0)
    with pytest.raises(UserError, match="mesh and volume resolutions must be at least 8, got 4 and 64"):
        evaluate_motion(fake, fake.mspec, mesh_resolution=4)
    with pytest.raises(UserError, match="4D \\(animated\\) representation, got Representation"):
        evaluate_motion(Representation(), fake.mspec)
    with pytest.raises(UserError, match="frame_vertices has 3 frames, the evaluation has 8"):
        evaluate_motion(fake, fake.mspec, frame_vertices=[np.zeros((1, 3))] * 3, **SMALL)
    with pytest.raises(UserError, match="must have the mesh's shape"):
        evaluate_motion(fake, fake.mspec, frame_vertices=[np.zeros((1, 3))] * 8, **SMALL)
