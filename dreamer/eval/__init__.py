"""Evaluation against the shape library's ground truth.

Owns: the metrics (silhouette IoU, colour error) and the evaluation cameras. Does not own:
loading runs (dreamer.trainer.outputs) or the ground truth itself (dreamer.shapes).
"""

# eval.json's scalar figures of a 4D run (dreamer.eval.four_d_metrics); here so that the API can list them
# without torch.
MOTION_SUMMARY_KEYS = ("mean_frame_iou", "mean_frame_volume_iou", "trajectory_error", "amplitude_ratio", "flicker",
                       "mean_frame_iou_phase", "trajectory_error_phase")
