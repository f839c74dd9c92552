"""Silhouette IoU and colour error of a representation against the shape library's ground truth.

Protocol (issue 2): 8 views at elevation 20°, azimuth every 45° starting at the front, 128 px,
the default orbit's middle distance and field of view; foreground = alpha > 0.5; colour error =
mean absolute RGB difference over pixels that are foreground in both (renders over white);
R-precision (issue 3) = share of the same views whose own prompt the evaluator classifier ranks
first among the library prompts (dreamer.eval.rprecision; None when the evaluator is missing);
multi-face rate = share of views whose silhouette matches the ground truth seen from the opposite
side (azimuth + 180°, also an eval view) better than its own by more than JANUS_MARGIN IoU — a
front/back confusion. It is 0 for objects that look the same from both sides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import logging

import torch
from kornia.color import rgb_to_grayscale

from dreamer.cameras import Camera, OrbitConfig, turntable

EVAL_VIEWS = 8
EVAL_ELEVATION = 20.0
EVAL_RESOLUTION = 128
JANUS_MARGIN = 0.02  # IoU by which the opposite view must win for a view to count as flipped
REC709_LUMA = (0.2126, 0.7152, 0.0722)  # luminance weights of R, G, B (ITU-R BT.709)

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    prompt: str
    iou: float  # mean silhouette IoU over the views
    colour_error: float  # mean |rgb − rgb_gt| over overlapping foreground pixels, in [0, 1]
    per_view_iou: list[float]
    per_view_colour_error: list[float]
    views: int
    resolution: int
    r_precision: float | None = None  # share of views whose prompt the evaluator ranks first
    predicted_prompts: list[str] | None = None  # the evaluator's top prompt per view
    multi_face_rate: float = 0.0  # share of views that match the opposite view's ground truth better

    def to_dict(self) -> dict:
        return asdict(self)


def eval_cameras(resolution: int = EVAL_RESOLUTION, views: int = EVAL_VIEWS) -> Camera:
    orbit = OrbitConfig()
    return turntable(views, resolution, resolution, elevation=EVAL_ELEVATION,
                     distance=sum(orbit.distance) / 2, fovy=sum(orbit.fovy) / 2)


def silhouette_iou(alpha: torch.Tensor, alpha_gt: torch.Tensor) -> torch.Tensor:
    """[B,H,W,1] alphas -> [B] IoU of alpha > 0.5 (1 when both are empty)."""
    a, b = alpha[..., 0] > 0.5, alpha_gt[..., 0] > 0.5
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def colour_error(rgb: torch.Tensor, rgb_gt: torch.Tensor, alpha: torch.Tensor, alpha_gt: torch.Tensor) -> torch.Tensor:
    """[B] mean absolute colour difference on pixels that are foreground in both (1 if no overlap)."""
    both = ((alpha[..., 0] > 0.5) & (alpha_gt[..., 0] > 0.5)).float()  # [B,H,W]
    diff = (rgb - rgb_gt).abs().mean(-1)  # [B,H,W]
    count = both.flatten(1).sum(1)
    return torch.where(count > 0, (diff * both).flatten(1).sum(1) / count.clamp_min(1), torch.ones_like(count))


@torch.no_grad()
def evaluate_representation(representation, prompt: str, device: torch.device | str = "cpu",
                            resolution: int = EVAL_RESOLUTION) -> EvalResult:
    from dreamer.shapes import parse_prompt, render_spec

    spec = parse_prompt(prompt)
    cams = eval_cameras(resolution)
    white = torch.ones(3)
    gt = render_spec(spec, cams, background=(1.0, 1.0, 1.0), supersample=2)
    representation.eval()
    renders = [representation.render(cams[i].to(device), background=white.to(device)) for i in range(len(cams))]
    rgb = torch.cat([r.rgb.float().cpu() for r in renders])
    alpha = torch.cat([r.alpha.float().cpu() for r in renders])
    ious = silhouette_iou(alpha, gt.alpha)
    errs = colour_error(rgb, gt.rgb, alpha, gt.alpha)
    result = EvalResult(spec.prompt, float(ious.mean()), float(errs.mean()), ious.tolist(), errs.tolist(),
                        len(cams), resolution, multi_face_rate=float(flipped_views(alpha, gt.alpha).float().mean()))
    retrieval = renders_r_precision(rgb.permute(0, 3, 1, 2), spec, alpha.permute(0, 3, 1, 2))
    if retrieval is not None:
        result.r_precision, result.predicted_prompts = retrieval.r_precision, retrieval.predicted
    return result


def flipped_views(alpha: torch.Tensor, alpha_gt: torch.Tensor) -> torch.Tensor:
    """[B] bool for a turntable of an even number of views: view i fits the ground truth of view
    i + B/2 (the opposite side) better than its own by more than JANUS_MARGIN IoU."""
    half = alpha.shape[0] // 2
    own = silhouette_iou(alpha, alpha_gt)
    opposite = silhouette_iou(alpha, alpha_gt.roll(-half, dims=0))
    return opposite > own + JANUS_MARGIN


def luminance(rgb: tuple[float, float, float]) -> float:
    """Relative luminance of a colour (BT.709 weights; kornia's default weights are BT.601's)."""
    pixel = torch.tensor(rgb, dtype=torch.float64).reshape(3, 1, 1)
    return float(rgb_to_grayscale(pixel, rgb_weights=torch.tensor(REC709_LUMA, dtype=torch.float64)))


def contrast_background(rgb: tuple[float, float, float]) -> float:
    """The grey level of the second background R-precision judges a view over: black behind
    bright colours (a faint white ghost over white reads as a white object; over black it does
    not), white behind dark ones (whose ghosts the white background already shows)."""
    return 0.0 if luminance(rgb) >= 0.3 else 1.0


def truth_r_precision(spec, evaluator=None):
    """`renders_r_precision` of the ground truth itself from the eval's own cameras (`eval_cameras`): how
    the evaluator reads the best possible result. A prompt whose truth is read right in fewer views than
    a benchmark asks for cannot succeed whatever is made. None when no evaluator is installed."""
    from dreamer.shapes import render_spec

    gt = render_spec(spec, eval_cameras(EVAL_RESOLUTION), background=(1.0, 1.0, 1.0), supersample=2)
    return renders_r_precision(gt.rgb.permute(0, 3, 1, 2), spec, gt.alpha.permute(0, 3, 1, 2), evaluator)


def renders_r_precision(images: torch.Tensor, spec, alpha: torch.Tensor | None = None, evaluator=None):
    """R-precision of [B, 3, H, W] renders over white with `evaluator` (default: the shipped one; None,
    with a warning, when it is missing). With their alpha [B, 1, H, W], a view counts only when it is
    retrieved over white and over `contrast_background` too, so a mostly transparent result is
    not credited for the colour of the background showing through it."""
    from dreamer.errors import UserError
    from dreamer.eval.classifier import default_evaluator
    from dreamer.eval.rprecision import both_retrieved, r_precision

    if evaluator is None:
        try:
            evaluator = default_evaluator()
        except UserError as exc:
            log.warning("R-precision skipped: %s", exc)
            return None
    over_white = r_precision(images, spec, evaluator)
    level = contrast_background(spec.rgb)
    if alpha is None or level == 1.0:
        return over_white
    # renders are composited over white: rgb = c + (1 − a)·1, so over grey g they are c + (1 − a)·g
    over_contrast = r_precision((images - (1.0 - alpha) * (1.0 - level)).clamp(0, 1), spec, evaluator)
    return both_retrieved(over_white, over_contrast)
