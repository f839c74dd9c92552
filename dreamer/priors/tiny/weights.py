"""The tiny prior's weights folder: `model.safetensors` (fp16 UNet weights) + `config.json`.

config.json records everything needed to rebuild and use the network: the UNet architecture
(`unet`), the noise schedule (`schedule`: 1000 DDPM steps, linear β 1e-4…0.02, v-prediction),
the text encoder and its token length (`text`), the camera features (`camera`) and the data
it was trained on (`data`: image size, field of view, camera ranges). Both files are written
atomically.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dreamer.errors import UserError
from dreamer.io import atomic_save, atomic_write_text
from dreamer.priors.tiny.lifted import LiftedConfig
from dreamer.priors.tiny.model import TinyUNetConfig, build_unet, move

FORMAT = "dreamer-tiny-prior-v1"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class ScheduleConfig:
    """The diffusion process the model was trained with (diffusers DDPMScheduler names)."""

    num_train_timesteps: int = 1000  # T
    beta_schedule: str = "linear"  # DDPM's linear schedule (pixel space)
    beta_start: float = 1e-4  # β_1
    beta_end: float = 0.02  # β_T
    prediction_type: str = "v_prediction"  # the network predicts v = α ε − σ x0


@dataclass
class TinyModelInfo:
    """Contents of config.json."""

    unet: TinyUNetConfig = field(default_factory=TinyUNetConfig)  # the architecture
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)  # the noise schedule
    text_encoder: str = "all-MiniLM-L6-v2"  # name of the frozen text encoder
    max_length: int = 16  # tokens per prompt
    data: dict = field(default_factory=dict)  # TinyDataConfig fields used in training (for reference)
    # the `tiny-3d` network (a rendered volume per view set) instead of a UNet; None = the UNet of `unet`
    lifted: LiftedConfig | None = None

    @property
    def views_per_sample(self) -> int:
        """V: the views a sample holds (the view-set size a cross-view or lifted model was trained on; else 1)."""
        joint = self.unet.cross_view or self.lifted is not None
        return int(self.data.get("views_per_set", 1)) if joint else 1

    def to_dict(self) -> dict:
        d = {"format": FORMAT, "unet": self.unet.to_dict(), "schedule": dataclasses.asdict(self.schedule),
             "text_encoder": self.text_encoder, "max_length": self.max_length, "data": self.data,
             "camera": "features (sin az, cos az, sin el, cos el, (d-2.8)/0.4, 1); zeros = no camera"}
        if self.lifted is not None:  # the UNet layouts' config.json stays as it was
            d["lifted"] = self.lifted.to_dict()
            d["camera"] = "the views' cameras project the volume's voxels and render it; no camera-free branch"
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TinyModelInfo":
        if d.get("format") != FORMAT:
            raise UserError(f"tiny prior config.json has format {d.get('format')!r}, expected {FORMAT!r}: "
                            "retrain with `dreamer prior train`")
        lifted = LiftedConfig.from_dict(d["lifted"]) if d.get("lifted") is not None else None
        return cls(unet=TinyUNetConfig.from_dict(d["unet"]), schedule=ScheduleConfig(**d["schedule"]),
                   text_encoder=d["text_encoder"], max_length=int(d["max_length"]), data=dict(d.get("data", {})),
                   lifted=lifted)


def build_network(info: TinyModelInfo) -> torch.nn.Module:
    """A freshly initialised network (float32) for `info`: the lifted `tiny-3d` network or the UNet."""
    if info.lifted is None:
        return build_unet(info.unet)
    from dreamer.priors import schedule
    from dreamer.priors.tiny.lifted import LiftedDenoiser

    s = info.schedule
    acp = schedule.make_alphas_cumprod(s.num_train_timesteps, s.beta_schedule, s.beta_start, s.beta_end)
    return LiftedDenoiser(info.lifted, acp)


def save_weights(folder: Path | str, unet: torch.nn.Module, info: TinyModelInfo,
                 dtype: torch.dtype = torch.float16) -> None:
    """Write model.safetensors (weights cast to `dtype`) and config.json into `folder`."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in unet.state_dict().items()}
    atomic_save(folder / MODEL_FILE, lambda tmp: save_file(tensors, str(tmp), metadata={"format": FORMAT}))
    atomic_write_text(folder / CONFIG_FILE, json.dumps(info.to_dict(), indent=2) + "\n")


def has_weights(folder: Path | str) -> bool:
    folder = Path(folder)
    return (folder / MODEL_FILE).is_file() and (folder / CONFIG_FILE).is_file()


def read_info(folder: Path | str) -> TinyModelInfo:
    """The TinyModelInfo of a weights folder's config.json (UserError when unreadable)."""
    try:
        return TinyModelInfo.from_dict(json.loads((Path(folder) / CONFIG_FILE).read_text()))
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"tiny prior config {Path(folder) / CONFIG_FILE} is unreadable ({exc})") from exc


def load_weights(folder: Path | str, dtype: torch.dtype = torch.float32, device="cpu"):
    """(unet in eval mode, TinyModelInfo) from a weights folder; UserError when missing/corrupt."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not has_weights(folder):
        raise UserError(f"tiny prior weights not found in {folder} (need {MODEL_FILE} and {CONFIG_FILE}): "
                        "run `dreamer prior train` to create them (about 2 hours on 2 CPU cores)")
    try:
        info = TinyModelInfo.from_dict(json.loads((folder / CONFIG_FILE).read_text()))
        state = load_file(str(folder / MODEL_FILE))
        unet = build_network(info)
        unet.load_state_dict({k: v.float() for k, v in state.items()})
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"tiny prior weights in {folder} are unreadable ({type(exc).__name__}: {exc}): "
                        "run `dreamer prior train` again") from exc
    return move(unet, device, dtype).eval().requires_grad_(False), info
