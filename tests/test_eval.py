"""Evaluation metrics and protocol against the shape library's ground truth."""

import pytest
import torch

from dreamer.eval.metrics import colour_error, eval_cameras, evaluate_representation, silhouette_iou
from dreamer.representations.base import RenderOutput, Representation
from dreamer.shapes import parse_prompt, render_spec


class OracleRepresentation(Representation):
    """Renders the ground truth of a (possibly different) library object, optionally shifted."""

    def __init__(self, prompt: str, shift_px: int = 0):
        super().__init__()
        self.spec = parse_prompt(prompt)
        self.shift_px = shift_px
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def render(self, camera, background=None):
        out = render_spec(self.spec, camera, background=(1.0, 1.0, 1.0), supersample=2)
        if self.shift_px:
            out = RenderOutput(out.rgb.roll(self.shift_px, dims=2), out.alpha.roll(self.shift_px, dims=2), out.depth)
        return out


def test_iou_and_colour_error_closed_forms():
    a = torch.zeros(1, 4, 4, 1)
    b = torch.zeros(1, 4, 4, 1)
    a[0, :2] = 1  # 8 pixels
    b[0, 1:3] = 1  # 8 pixels, 4 shared
    assert silhouette_iou(a, b).item() == pytest.approx(4 / 12)
    assert silhouette_iou(torch.zeros_like(a), torch.zeros_like(b)).item() == 1.0
    rgb = torch.zeros(1, 4, 4, 3)
    rgb_gt = torch.zeros(1, 4, 4, 3)
    rgb_gt[0, 1] = 0.3  # only row 1 is in the overlap with a difference
    # rows 0..2: overlap is row 1 only (4 pixels), each off by 0.3 in every channel
    assert colour_error(rgb, rgb_gt, a, b).item() == pytest.approx(0.3)


def test_protocol_cameras():
    cams = eval_cameras()
    assert len(cams) == 8 and cams.width == 128
    assert torch.allclose(cams.elevation, torch.full((8,), 20.0), atol=1e-3)
    assert torch.allclose(cams.azimuth, torch.arange(8.0) * 45, atol=1e-3)


def test_ground_truth_scores_perfectly_and_wrong_objects_do_not():
    perfect = evaluate_representation(OracleRepresentation("a red cube"), "a red cube")
    assert perfect.iou == pytest.approx(1.0) and perfect.colour_error == pytest.approx(0.0, abs=1e-6)
    assert len(perfect.per_view_iou) == 8
    assert perfect.r_precision == 1.0 and perfect.predicted_prompts == ["a red cube"] * 8
    wrong_colour = evaluate_representation(OracleRepresentation("a blue cube"), "a red cube")
    assert wrong_colour.iou == pytest.approx(1.0) and wrong_colour.colour_error > 0.3
    assert wrong_colour.r_precision == 0.0 and set(wrong_colour.predicted_prompts) == {"a blue cube"}
    wrong_shape = evaluate_representation(OracleRepresentation("a red torus"), "a red cube")
    assert wrong_shape.iou < 0.8 and wrong_shape.r_precision == 0.0
    assert perfect.multi_face_rate == 0.0


def test_multi_face_rate_counts_views_that_show_the_other_side():
    class BackToFront(OracleRepresentation):  # renders the mug seen from the opposite side: a Janus object
        def render(self, camera, background=None):
            from dreamer.cameras import from_spherical

            flipped = from_spherical(camera.azimuth + 180.0, camera.elevation, camera.distance, camera.fovy,
                                     camera.width, camera.height)
            return super().render(flipped, background)

    janus = evaluate_representation(BackToFront("a red mug"), "a red mug")
    assert janus.multi_face_rate >= 0.5  # views where the handle side is visible flip
    assert evaluate_representation(OracleRepresentation("a red mug"), "a red mug").multi_face_rate == 0.0
    assert evaluate_representation(BackToFront("a red sphere"), "a red sphere").multi_face_rate == 0.0
    shifted = evaluate_representation(OracleRepresentation("a red cube", shift_px=6), "a red cube")
    assert 0.5 < shifted.iou < 0.95


class GhostRepresentation(OracleRepresentation):
    """The ground truth at a fraction of its opacity, composited over white as renders are."""

    def __init__(self, prompt: str, opacity: float):
        super().__init__(prompt)
        self.opacity = opacity

    def render(self, camera, background=None):
        out = super().render(camera, background)
        premultiplied = out.rgb - (1.0 - out.alpha)  # the colour over black
        alpha = out.alpha * self.opacity
        return RenderOutput(premultiplied * self.opacity + (1.0 - alpha), alpha, out.depth)


def test_r_precision_does_not_credit_a_faint_ghost():
    from dreamer.eval.metrics import contrast_background

    assert contrast_background((0.93, 0.93, 0.93)) == 0.0 and contrast_background((0.07, 0.07, 0.07)) == 1.0
    solid = evaluate_representation(GhostRepresentation("a white sphere", 1.0), "a white sphere")
    assert solid.r_precision >= 0.75
    ghost = evaluate_representation(GhostRepresentation("a white sphere", 0.2), "a white sphere")
    assert ghost.iou == 0.0 and ghost.r_precision == 0.0
    # a dark ghost over white already looks pale: judged over white alone, and still a miss
    assert evaluate_representation(GhostRepresentation("a black cube", 0.2), "a black cube").r_precision == 0.0
