"""The `tiny-motion` weights folder: `model.safetensors` (the trained temporal layers and text projection,
fp16) + `config.json` (the frozen image prior's folder, the temporal layers' shape, the clip length and
the training data). The image UNet is not copied: it is loaded from `image_prior` (`tiny`'s shipped
weights), so the folder stays a few MB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dreamer.errors import UserError
from dreamer.io import atomic_save, atomic_write_text
from dreamer.priors.tiny_motion.model import MotionLayersConfig

FORMAT = "dreamer-tiny-motion-v1"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class MotionModelInfo:
    """Contents of config.json."""

    image_prior: str = "assets/priors/tiny"  # the frozen image prior's weights folder
    layers: MotionLayersConfig = field(default_factory=MotionLayersConfig)
    frames: int = 8  # the clip length it was trained on
    data: dict = field(default_factory=dict)  # ClipDataConfig fields used in training (for reference)
    noise_share: float = 0.0  # ρ of the frame noise it was trained on (schedule.frame_noise; 0 = independent)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "image_prior": self.image_prior, "layers": self.layers.to_dict(),
                "frames": self.frames, "data": self.data, "noise_share": self.noise_share}

    @classmethod
    def from_dict(cls, d: dict) -> "MotionModelInfo":
        if d.get("format") != FORMAT:
            raise UserError(f"tiny-motion config.json has format {d.get('format')!r}, expected {FORMAT!r}: "
                            "retrain with `dreamer prior train-motion`")
        return cls(image_prior=d["image_prior"], layers=MotionLayersConfig.from_dict(d["layers"]),
                   frames=int(d["frames"]), data=dict(d.get("data", {})),
                   noise_share=float(d.get("noise_share", 0.0)))  # weights saved before the option: independent


def has_motion_weights(folder: Path | str) -> bool:
    folder = Path(folder)
    return (folder / MODEL_FILE).is_file() and (folder / CONFIG_FILE).is_file()


def save_motion_weights(folder: Path | str, state: dict[str, torch.Tensor], info: MotionModelInfo) -> None:
    """Write the trained layers' `state` (fp16) and config.json into `folder`, atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in state.items()}
    atomic_save(folder / MODEL_FILE, lambda tmp: save_file(tensors, str(tmp), metadata={"format": FORMAT}))
    atomic_write_text(folder / CONFIG_FILE, json.dumps(info.to_dict(), indent=2) + "\n")


def load_motion_network(folder: Path | str, device="cpu"):
    """(video UNet in eval mode, MotionModelInfo, the image prior's TinyModelInfo) from a weights folder:
    the image prior's UNet with the trained temporal layers; UserError when missing or corrupt."""
    from safetensors.torch import load_file

    from dreamer.priors.tiny.weights import load_weights
    from dreamer.priors.tiny_motion.model import build_motion_unet, trainable_module
    from dreamer.resources import resolve_weights

    folder = Path(folder)
    if not has_motion_weights(folder):
        raise UserError(f"the tiny-motion prior has no weights in {folder}: run `dreamer prior train-motion` "
                        "(about 2.5 hours on 2 CPU cores), or use the weight-free preset: --config 4d-oracle")
    try:
        info = MotionModelInfo.from_dict(json.loads((folder / CONFIG_FILE).read_text()))
        image_unet, image_info = load_weights(resolve_weights(info.image_prior))
        unet = build_motion_unet(image_unet, info.layers)
        state = load_file(str(folder / MODEL_FILE))
        trainable_module(unet).load_state_dict({k: v.float() for k, v in state.items()})
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"tiny-motion weights in {folder} are unreadable ({type(exc).__name__}: {exc}): "
                        "run `dreamer prior train-motion` again") from exc
    return unet.to(device).eval().requires_grad_(False), info, image_info
