"""R-precision of renders among the library prompts, scored by the evaluator classifier.

For each render, every library prompt (colour × shape) gets the score
log p(colour | image) + log p(shape | image); the render counts as retrieved when its own prompt
ranks first (R = 1, the CLIP R-precision protocol of DreamFields/DreamFusion with the evaluator
in place of CLIP). R-precision is the share of retrieved renders.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dreamer.eval.classifier import Evaluator
from dreamer.shapes import ObjectSpec


@dataclass
class RPrecision:
    r_precision: float  # share of views whose own prompt ranks first
    per_view: list[bool]
    predicted: list[str]  # the top-ranked prompt of each view ("a red chair")
    rank: list[int]  # 1-based rank of the true prompt per view


def r_precision(images: torch.Tensor, spec: ObjectSpec, evaluator: Evaluator) -> RPrecision:
    """R-precision of [B, 3, H, W] renders in [0, 1] of `spec`."""
    scores = evaluator.prompt_log_probs(evaluator.predict(images))  # [B, C·S]
    candidates = evaluator.prompts()
    true_column = candidates.index((spec.colour, spec.shape))
    rank = (scores > scores[:, true_column:true_column + 1]).sum(1) + 1  # ties count in the render's favour
    top = scores.argmax(1).tolist()
    predicted = [ObjectSpec(candidates[i][1], candidates[i][0]).prompt for i in top]
    hits = (rank == 1).tolist()
    return RPrecision(sum(hits) / len(hits), hits, predicted, rank.tolist())


def both_retrieved(first: RPrecision, second: RPrecision) -> RPrecision:
    """Views retrieved in both judgements (the same views over two backgrounds); the prediction
    and rank shown are those of the judgement that failed, else of the first."""
    hits = [a and b for a, b in zip(first.per_view, second.per_view)]
    predicted = [p2 if a and not b else p1 for p1, p2, a, b in
                 zip(first.predicted, second.predicted, first.per_view, second.per_view)]
    rank = [max(r1, r2) for r1, r2 in zip(first.rank, second.rank)]
    return RPrecision(sum(hits) / len(hits), hits, predicted, rank)
