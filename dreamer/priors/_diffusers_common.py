"""Plumbing shared by the diffusers-backed priors (Stable Diffusion, DeepFloyd IF).

Owns: turning a model name into a local folder or hub id, loading one component with
`from_pretrained` while mapping every "weights are not here" failure to a one-line `UserError`,
freezing, offline defaults, and `DiffusersPrior` — the part of the `Prior` contract that
does not depend on latent vs pixel space (prompt encoding with view variants, ε conversion).
Does not own: which components a model has, or how images map to its input space.

diffusers / transformers / huggingface_hub are imported inside functions, never at module import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from dreamer.cameras import VIEW_LABELS, Camera
from dreamer.errors import UserError
from dreamer.priors.base import Prior, PromptEmbedding
from dreamer.priors.schedule import PREDICTION_TYPES, timesteps

_TRUTHY = {"1", "on", "yes", "true"}


# ----------------------------------------------------------------------------- small resolvers

def env_offline() -> bool:
    """True when the environment asks the Hugging Face libraries to stay offline."""
    return any(os.environ.get(k, "").strip().lower() in _TRUTHY for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve_local_files_only(value: bool | None) -> bool:
    """`None` means: offline exactly when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set.

    Read at load time, not at import time, so setting the variable later in a process still works
    (huggingface_hub itself reads HF_HUB_OFFLINE once, when it is first imported).
    """
    return env_offline() if value is None else bool(value)


def transformers_dtype_kwargs(dtype: torch.dtype) -> dict[str, Any]:
    """transformers renamed `torch_dtype` to `dtype` in 4.56; pass whichever this version takes."""
    import transformers

    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def vae_dtype(vae: Any, dtype: torch.dtype) -> torch.dtype:
    """The precision a VAE runs in: float32 when its config asks for it (`force_upcast`), else `dtype`.

    `force_upcast` is diffusers' AutoencoderKL config field for VAEs whose activations overflow
    in fp16 (SDXL's gives NaN on encode and decode); diffusers defaults it to True, and VAEs that
    are safe in fp16 (e.g. the "fp16-fix" SDXL VAE) set it to False.
    """
    return torch.float32 if bool(vae.config.get("force_upcast", True)) else dtype


def freeze(*modules: torch.nn.Module) -> None:
    """eval() and requires_grad False on every parameter: a prior is never trained."""
    for m in modules:
        m.eval()
        m.requires_grad_(False)


def resize_square(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """[B,C,H,W] -> [B,C,size,size], bilinear, no antialias (cheap and differentiable)."""
    if rgb.shape[-2:] == (size, size):
        return rgb
    return F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


def view_prompts(prompt: str) -> dict[str, str]:
    """DreamFusion-style view-dependent prompts, one per camera view label."""
    return {label: f"{prompt}, {label} view" for label in VIEW_LABELS}


# ----------------------------------------------------------------------------- loading

@dataclass
class ModelSource:
    """Where a model's weights are looked for, and how to explain a failure."""

    family: str  # human name, e.g. "Stable Diffusion"
    name: str  # what the user asked for (alias, hub id or path)
    location: str  # the hub id or local folder actually tried
    is_local: bool
    revision: str | None = None
    variant: str | None = None
    cache_dir: str | None = None
    local_files_only: bool = False
    example_id: str = ""  # a hub id to put in the fix (the resolved one, or a sensible default)
    download_note: str = ""  # extra words after the download command (e.g. a gated repository's license)
    option: str = "prior.model"  # the config option that names these weights, as the fix spells it

    def pretrained_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"local_files_only": self.local_files_only}
        if not self.is_local:
            if self.revision is not None:
                kw["revision"] = self.revision
            if self.cache_dir is not None:
                kw["cache_dir"] = self.cache_dir
        return kw

    def _cache_hint(self) -> str:
        if self.cache_dir:
            return self.cache_dir
        try:
            from huggingface_hub import constants

            return constants.HF_HUB_CACHE
        except Exception:  # pragma: no cover - huggingface_hub always ships with diffusers
            return "$HF_HOME/hub"

    def fix(self) -> str:
        hub_id = self.location if not self.is_local else self.example_id
        return (f"Fix: on a connected machine run `hf download {hub_id}` (older huggingface_hub: "
                f"`huggingface-cli download {hub_id}`){self.download_note} and copy the hub cache to this "
                f"machine (looked in {self._cache_hint()}; set HF_HOME to move it), or pass a local "
                f"diffusers folder with {self.option}=/path/to/folder")


def _looks_like_path(name: str) -> bool:
    """An absolute/relative/home path, or more than one '/' (a hub id is exactly 'owner/name')."""
    return (name.startswith(("/", "./", "../", "~", "\\")) or name.count("/") > 1
            or (len(name) > 1 and name[1] == ":") or (os.sep != "/" and os.sep in name))


def resolve_source(family: str, name: str, aliases: dict[str, str], *, revision: str | None,
                   variant: str | None, cache_dir: str | None, local_files_only: bool | None,
                   subfolders: tuple[str, ...], download_note: str = "", option: str = "prior.model") -> ModelSource:
    """Alias -> hub id; an existing folder -> local; a path-like name that does not exist -> UserError.

    `option` is the config option that holds `name` (what the error messages tell the user to set).
    """
    if not name.strip():
        raise UserError(f"{family}: {option} is empty; pass an alias ({', '.join(aliases)}), "
                        "a hub id or a local folder")
    location = aliases.get(name, name)
    expanded = os.path.expanduser(location)
    offline = resolve_local_files_only(local_files_only)
    example = next(iter(aliases.values()), "")
    common = dict(family=family, name=name, revision=revision, variant=variant, cache_dir=cache_dir,
                  local_files_only=offline, download_note=download_note, option=option)
    if os.path.isdir(expanded):
        missing = [s for s in subfolders if not os.path.isdir(os.path.join(expanded, s))]
        if missing:
            raise UserError(
                f"{family} model folder {expanded} is not a diffusers model folder: it has no "
                f"{', '.join(s + '/' for s in missing)}. Pass a folder saved by diffusers (with "
                f"{', '.join(s + '/' for s in subfolders)}) via {option}=..., or a hub id such as {example}")
        return ModelSource(location=expanded, is_local=True, example_id=example, **common)
    if _looks_like_path(location):
        src = ModelSource(location=expanded, is_local=True, example_id=example, **common)
        raise UserError(f"{family} model folder {expanded} does not exist. {src.fix()}")
    return ModelSource(location=location, is_local=False, example_id=location, **common)


def _load_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "those weights are not available here"."""
    errors: list[type[BaseException]] = [OSError, ValueError]
    try:
        from huggingface_hub.errors import EntryNotFoundError  # not an OSError

        errors.append(EntryNotFoundError)
    except ImportError:  # pragma: no cover
        pass
    try:
        import httpx

        errors.append(httpx.HTTPError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split()).rstrip(".")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_part(source: ModelSource, what: str, loader: Callable[..., Any], subfolder: str, **kwargs) -> Any:
    """`loader(location, subfolder=..., ...)`, with any missing-weights failure as a one-line UserError."""
    try:
        return loader(source.location, subfolder=subfolder, **source.pretrained_kwargs(), **kwargs)
    except ImportError as exc:
        raise UserError(f"loading the {family_what(source, what)} needs a package that is not installed "
                        f"({_one_line(exc)}): install it with pip") from exc
    except _load_errors() as exc:
        where = f"local folder {source.location}" if source.is_local else f"hub id {source.location}"
        if source.revision and not source.is_local:
            where += f" @ {source.revision}"
        mode = ""
        if source.local_files_only and not source.is_local:
            mode = " (offline: HF_HUB_OFFLINE is set)" if env_offline() else " (offline: local_files_only)"
        gated = ""
        if type(exc).__name__ == "GatedRepoError":
            gated = (f" The repository is gated: accept its license at https://huggingface.co/{source.location} "
                     f"and log in with `hf auth login` first.")
        part = f" ({subfolder}/)" if subfolder else ""
        raise UserError(
            f"{family_what(source, 'weights')} not available: could not load the {what}{part} "
            f"from {where}{mode}: {type(exc).__name__}: {_one_line(exc)}.{gated} {source.fix()}"
        ) from exc


def family_what(source: ModelSource, what: str) -> str:
    alias = f" '{source.name}'" if source.name != source.location else ""
    return f"{source.family}{alias} {what}"


# ----------------------------------------------------------------------------- shared prior logic

class DiffusersPrior(Prior):
    """Prompt encoding and ε conversion shared by the diffusers priors.

    Subclasses set `unet`, `model_dtype` and call `_set_schedule(scheduler, device)`; they implement
    `_encode_texts(texts) -> [N, L, D]` and the image mapping (`encode_images` / `decode`), and may
    override `_model_output(net, …)` (e.g. IF keeps only the ε channels of its 6-channel output).
    """

    camera_conditioned = False
    offload_text_encoder: bool = False

    def _set_schedule(self, scheduler: Any, device: torch.device) -> None:
        cfg = scheduler.config
        self.prediction_type: str = cfg.get("prediction_type", "epsilon")
        if self.prediction_type not in PREDICTION_TYPES:
            raise UserError(f"unsupported scheduler prediction_type {self.prediction_type!r}: "
                            "expected epsilon, v_prediction or sample")
        self.num_train_timesteps = int(cfg.num_train_timesteps)
        acp = torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float32).to(device)
        assert acp.shape == (self.num_train_timesteps,), acp.shape
        self.register_buffer("alphas_cumprod", acp, persistent=False)  # [T]

    @property
    def device(self) -> torch.device:
        return self.alphas_cumprod.device

    # --- prompts

    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        """[N, L, D] text embeddings (float32) for N strings."""
        raise NotImplementedError

    @torch.no_grad()
    def encode_prompt(self, prompt: str, negative_prompt: str = "", view_dependent: bool = False) -> PromptEmbedding:
        texts = [prompt, negative_prompt, ""]
        views = view_prompts(prompt) if view_dependent else {}
        texts += list(views.values())
        unique = list(dict.fromkeys(texts))
        encoder = self.text_encoder
        if self.offload_text_encoder:
            encoder.to(self.device)
        try:
            emb = self._encode_texts(unique)  # [N, L, D]
        finally:
            if self.offload_text_encoder:
                encoder.to("cpu")
        by_text = {t: emb[i: i + 1] for i, t in enumerate(unique)}
        return PromptEmbedding(
            prompt=prompt,
            negative_prompt=negative_prompt,
            cond=by_text[prompt],
            uncond=by_text[negative_prompt],
            views={label: by_text[t] for label, t in views.items()},
            empty=by_text[""],
        )

    # --- noise prediction

    def network(self) -> torch.nn.Module:
        return self.unet

    def _model_output(self, net: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor,
                      embedding: torch.Tensor) -> torch.Tensor:
        return net(x_t, t, encoder_hidden_states=embedding, return_dict=False)[0]

    def network_output(self, net: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                       camera: Camera | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """`net`'s raw output in float32 (the network runs in `dtype`, default `model_dtype`). `camera` is ignored."""
        dtype = dtype or self.model_dtype
        B = x_t.shape[0]
        t = timesteps(t, B, self.device)
        if embedding.shape[0] != B:
            embedding = embedding.expand(B, *embedding.shape[1:])
        return self._model_output(net, x_t.to(self.device, dtype), t, embedding.to(self.device, dtype)).float()

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                      camera: Camera | None = None) -> torch.Tensor:
        """ε̂ [B, *latent_shape] in float32; the network runs in `model_dtype`. `camera` is ignored."""
        t = timesteps(t, x_t.shape[0], self.device)
        out = self.network_output(self.unet, x_t, t, embedding)
        return self.output_to_epsilon(out, x_t.to(self.device), t)

