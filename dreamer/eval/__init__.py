"""Evaluation against the shape library's ground truth.

Owns: the metrics (silhouette IoU, colour error) and the evaluation cameras. Does not own:
loading runs (dreamer.trainer.outputs) or the ground truth itself (dreamer.shapes).
"""
