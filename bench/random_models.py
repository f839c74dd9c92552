"""Diffusers-format model folders with random weights, full size or tiny, loadable by the priors' own code.

    from random_models import build_model_folder
    built = build_model_folder("zeroscope", Path("/tmp/zs"), tiny=False, device="cuda")
    # then e.g. `prior.model=/tmp/zs` loads it through ZeroscopePrior's from_pretrained path

Nothing is downloaded: each model is built from its published architecture config (written out below,
with where the numbers come from), given random weights, and saved in the layout the hub repository
has, so `prior.model=<folder>` (and `prior.motion_adapter=<folder>`) exercise the real loading code.
Full-size folders are what bench/gpu_timing.py times on a GPU; tiny ones (the same block types and
layouts at a few channels) run the same code on the CPU in seconds.

Models (`MODELS`), one `from_pretrained` target each:
- `sd21-base` — Stable Diffusion 2.1-base: UNet, VAE, OpenCLIP-H text tower (hidden 1024, 23 layers);
- `sdxl` — SDXL base 1.0: UNet, VAE (kept fp32 on disk: it overflows in fp16), CLIP-L and OpenCLIP-bigG;
- `deepfloyd-if` — DeepFloyd IF-I-XL stage I (4.3 B UNet); its T5-XXL encoder is cut to one layer of the
  real width (4096): it runs once per run, before the first step, so it does not change s/step;
- `sd15` — Stable Diffusion 1.5: UNet (cross-attention 768), VAE, CLIP ViT-L/14 text encoder; the base of
  the `animatediff` prior and the `sd15` image prior;
- `motion-adapter` — AnimateDiff's MotionAdapter v1-5-2 (a hub-style folder: config.json and weights at its
  top, as `prior.motion_adapter` reads it);
- `zeroscope` — zeroscope v2 576w: UNet3DConditionModel (the ModelScope text-to-video architecture), SD's VAE,
  the OpenCLIP-H text tower, in Stable Diffusion's folder layout.
Every folder that has a text encoder gets an offline character tokenizer (`write_tokenizer`): the
vocabulary only decides which ids reach the embedding table, whose full size is kept.

Networks are saved in fp16 for full-size folders (the priors run them in fp16 on CUDA; the cast on
disk halves the build and load time) and fp32 for tiny ones. Schedulers are DDPMScheduler configs
with the model's noise schedule (the priors read any scheduler config through DDPMScheduler).
"""

from __future__ import annotations

import json
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

CLIP_VOCAB = 49408  # CLIP's / OpenCLIP's vocabulary size
T5_VOCAB = 32128

# ----------------------------------------------------------------------------- architectures
# Stable Diffusion 2.1-base (stabilityai/stable-diffusion-2-1-base), diffusers configs.
SD21_BASE_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
    act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
    use_linear_projection=True, dual_cross_attention=False, only_cross_attention=False, upcast_attention=False,
)
SD_VAE = dict(  # the KL-f8 autoencoder of SD 1.x / 2.x (and of ModelScope / zeroscope)
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, act_fn="silu",
    norm_num_groups=32, sample_size=512, scaling_factor=0.18215,
)
SD21_TEXT = dict(  # OpenCLIP ViT-H/14's text tower, as SD 2.x ships it (CLIPTextModel)
    vocab_size=CLIP_VOCAB, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
    max_position_embeddings=77, hidden_act="gelu", projection_dim=512,
)
SD_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                    prediction_type="epsilon", clip_sample=False, steps_offset=1)

# Stable Diffusion 1.5 (runwayml/stable-diffusion-v1-5 unet/config.json): SD 2.1-base's layout with CLIP-L's
# 768-wide cross-attention, 8 heads everywhere and conv (not linear) attention projections; 859.5 M parameters.
SD15_UNET = {**SD21_BASE_UNET, "cross_attention_dim": 768, "attention_head_dim": 8, "use_linear_projection": False}
SD15_TEXT = dict(  # CLIP ViT-L/14's text encoder (openai/clip-vit-large-patch14), 123 M parameters
    vocab_size=CLIP_VOCAB, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
    max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
)

# AnimateDiff motion adapter v1-5-2 (guoyww/animatediff-motion-adapter-v1-5-2; AnimateDiff's
# configs/inference/inference-v2.yaml: motion modules at all four resolutions and in the mid block, 8 heads,
# one temporal transformer of two temporal self-attentions each, position encoding up to 32 frames). These are
# diffusers' MotionAdapter defaults; 453.2 M parameters (mm_sd_v15_v2.ckpt: 1.8 GB in fp32).
MOTION_ADAPTER_V1_5_2 = dict(
    block_out_channels=(320, 640, 1280, 1280), motion_layers_per_block=2, motion_transformer_layers_per_block=1,
    motion_mid_block_layers_per_block=1, motion_transformer_layers_per_mid_block=1, motion_num_attention_heads=8,
    motion_norm_num_groups=32, motion_max_seq_length=32, use_motion_mid_block=True,
)

# zeroscope v2 576w (cerspense/zeroscope_v2_576w), a fine-tune of ModelScope text-to-video
# (ali-vilab/text-to-video-ms-1.7b) with its architecture: diffusers' UNet3DConditionModel defaults, which were
# written for that model (1.41 B parameters; + the 340 M OpenCLIP-H text tower = the "1.7b"); SD's VAE and noise
# schedule. sample_size is not read by the prior (its frames are `image_size`, 320 px).
ZEROSCOPE_UNET = dict(
    sample_size=32, in_channels=4, out_channels=4,
    down_block_types=("CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"),
    up_block_types=("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
    block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
    act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=1024, attention_head_dim=64,
)
ZEROSCOPE_TEXT = SD21_TEXT  # ModelScope conditions on OpenCLIP ViT-H/14's text tower, as SD 2.x does

# SDXL base 1.0 (stabilityai/stable-diffusion-xl-base-1.0).
SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280), layers_per_block=2, transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20), cross_attention_dim=2048, use_linear_projection=True, act_fn="silu",
    norm_num_groups=32, norm_eps=1e-5, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, upcast_attention=False,
)
SDXL_VAE = {**SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
SDXL_TEXT = dict(  # CLIP ViT-L/14 (CLIPTextModel)
    vocab_size=CLIP_VOCAB, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
    max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
)
SDXL_TEXT_2 = dict(  # OpenCLIP ViT-bigG/14 (CLIPTextModelWithProjection)
    vocab_size=CLIP_VOCAB, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
    max_position_embeddings=77, hidden_act="gelu", projection_dim=1280,
)

# DeepFloyd IF-I-XL v1.0 stage I (DeepFloyd/IF-I-XL-v1.0): 4.3 B parameters, 64 px pixel space.
IF_I_XL_UNET = dict(
    sample_size=64, in_channels=3, out_channels=6, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D",
                      "SimpleCrossAttnDownBlock2D"),
    up_block_types=("SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                    "ResnetUpsampleBlock2D"),
    mid_block_type="UNetMidBlock2DSimpleCrossAttn", block_out_channels=(704, 1408, 2112, 2816), layers_per_block=3,
    act_fn="gelu", norm_num_groups=32, norm_eps=1e-5, attention_head_dim=64, cross_attention_dim=2816,
    cross_attention_norm="group_norm", encoder_hid_dim=4096, encoder_hid_dim_type="text_proj",
    addition_embed_type="text", addition_embed_type_num_heads=64, resnet_time_scale_shift="scale_shift",
    resnet_skip_time_act=False, time_embedding_act_fn="gelu", upcast_attention=False, use_linear_projection=False,
)
IF_T5 = dict(  # T5-v1.1-XXL's width, one layer (see the module docstring)
    vocab_size=T5_VOCAB, d_model=4096, d_kv=64, d_ff=10240, num_layers=1, num_heads=64,
    feed_forward_proj="gated-gelu", decoder_start_token_id=0,
)
IF_SCHEDULER = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", variance_type="learned_range",
                    prediction_type="epsilon")

# Tiny: the same block types and layouts at a few channels (what the CPU runs).
TINY_SD_UNET = {**SD21_BASE_UNET, "sample_size": 8, "block_out_channels": (8, 16, 16, 16), "layers_per_block": 1,
                "norm_num_groups": 4, "cross_attention_dim": 16, "attention_head_dim": (2, 2, 2, 2)}
TINY_SD15_UNET = {**SD15_UNET, "sample_size": 8, "block_out_channels": (8, 16, 16, 16), "layers_per_block": 1,
                  "norm_num_groups": 4, "cross_attention_dim": 16, "attention_head_dim": 2}
# the adapter must match its UNet: as many blocks, the same widths and motion layers per block as resnets
TINY_MOTION_ADAPTER = {**MOTION_ADAPTER_V1_5_2, "block_out_channels": (8, 16, 16, 16), "motion_layers_per_block": 1,
                       "motion_num_attention_heads": 2, "motion_norm_num_groups": 4}
TINY_ZEROSCOPE_UNET = {**ZEROSCOPE_UNET, "sample_size": 8, "block_out_channels": (8, 16, 16, 16),
                       "layers_per_block": 1, "norm_num_groups": 4, "cross_attention_dim": 16, "attention_head_dim": 2}
TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), layers_per_block=1,
                down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                norm_num_groups=4, sample_size=16, scaling_factor=0.18215)
TINY_TEXT = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                 max_position_embeddings=77, projection_dim=16)
TINY_SDXL_UNET = {**SDXL_UNET, "sample_size": 8, "block_out_channels": (8, 16, 16), "layers_per_block": 1,
                  "transformer_layers_per_block": (1, 1, 2), "attention_head_dim": (2, 2, 2), "norm_num_groups": 4,
                  "cross_attention_dim": 32, "addition_time_embed_dim": 4,
                  "projection_class_embeddings_input_dim": 6 * 4 + 16}
TINY_IF_UNET = {**IF_I_XL_UNET, "sample_size": 16, "block_out_channels": (16, 32),
                "down_block_types": ("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
                "up_block_types": ("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"), "layers_per_block": 1,
                "norm_num_groups": 8, "attention_head_dim": 8, "cross_attention_dim": 32, "encoder_hid_dim": 16,
                "addition_embed_type_num_heads": 2}
TINY_T5 = dict(d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, feed_forward_proj="gated-gelu",
               decoder_start_token_id=0)
TINY_IMAGE_SIZE = 16  # the side every tiny model is run at (SD-style: UNet sample 8 × the tiny VAE's factor 2; IF: 16)

MODELS = ("sd21-base", "sdxl", "deepfloyd-if", "sd15", "motion-adapter", "zeroscope")
TOKENIZERS = {"sdxl": ("tokenizer", "tokenizer_2"), "motion-adapter": ()}  # default: ("tokenizer",)


# ----------------------------------------------------------------------------- tokenizer

def write_tokenizer(folder: Path):
    """A CLIPTokenizer over single characters (no merges), written to `folder` and returned."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    symbols = string.ascii_lowercase + string.digits + ",.-'!?"
    tokens = list(symbols) + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(folder)
    return tok


def _special_ids(tok) -> dict:
    return dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


# ----------------------------------------------------------------------------- recipes

@dataclass(frozen=True)
class Part:
    """One part of a model folder: `make()` builds it with random weights, saved under `folder / name`."""

    name: str  # subfolder; "" = the folder itself (a MotionAdapter repository keeps config.json at its top)
    make: Callable[[], Any]  # a diffusers / transformers module, or a scheduler (no weights)
    fp32: bool = False  # kept float32 on disk whatever the folder's dtype (SDXL's VAE overflows in fp16)


def recipe(name: str, tiny: bool, tok=None) -> list[Part]:
    """The parts of model `name` (see MODELS), in the order they are built; nothing is built yet.

    `tok` is the folder's tokenizer (its special ids go into the text encoders' configs; tiny text encoders
    get its vocabulary size); None for the tokenizer-less `motion-adapter`."""
    import diffusers
    import transformers

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; one of {', '.join(MODELS)}")
    vocab = len(tok) if (tiny and tok is not None) else CLIP_VOCAB

    def clip(config: dict, with_projection: bool = False) -> Callable[[], Any]:
        cfg = {**config, **TINY_TEXT, "vocab_size": vocab} if tiny else config
        cls = transformers.CLIPTextModelWithProjection if with_projection else transformers.CLIPTextModel
        return lambda: cls(transformers.CLIPTextConfig(**cfg, **_special_ids(tok)))

    def pick(full: dict, small: dict) -> dict:
        return small if tiny else full

    def scheduler(config: dict) -> Part:
        return Part("scheduler", lambda: diffusers.DDPMScheduler(**config))

    def vae(config: dict = SD_VAE, fp32: bool = False) -> Part:
        small = {**TINY_VAE, "scaling_factor": config["scaling_factor"]}
        return Part("vae", lambda: diffusers.AutoencoderKL(**pick(config, small)), fp32)

    if name == "sd21-base":
        return [scheduler(SD_SCHEDULER), Part("text_encoder", clip(SD21_TEXT)), vae(),
                Part("unet", lambda: diffusers.UNet2DConditionModel(**pick(SD21_BASE_UNET, TINY_SD_UNET)))]
    if name == "sd15":
        return [scheduler(SD_SCHEDULER), Part("text_encoder", clip(SD15_TEXT)), vae(),
                Part("unet", lambda: diffusers.UNet2DConditionModel(**pick(SD15_UNET, TINY_SD15_UNET)))]
    if name == "motion-adapter":
        return [Part("", lambda: diffusers.MotionAdapter(**pick(MOTION_ADAPTER_V1_5_2, TINY_MOTION_ADAPTER)))]
    if name == "zeroscope":
        return [scheduler(SD_SCHEDULER), Part("text_encoder", clip(ZEROSCOPE_TEXT)), vae(),
                Part("unet", lambda: diffusers.UNet3DConditionModel(**pick(ZEROSCOPE_UNET, TINY_ZEROSCOPE_UNET)))]
    if name == "sdxl":
        return [scheduler(SD_SCHEDULER), Part("text_encoder", clip(SDXL_TEXT)),
                Part("text_encoder_2", clip(SDXL_TEXT_2, with_projection=True)), vae(SDXL_VAE, fp32=True),
                Part("unet", lambda: diffusers.UNet2DConditionModel(**pick(SDXL_UNET, TINY_SDXL_UNET)))]
    # deepfloyd-if
    t5 = {**TINY_T5, "vocab_size": len(tok)} if tiny else IF_T5
    return [scheduler(IF_SCHEDULER),
            Part("text_encoder", lambda: transformers.T5EncoderModel(transformers.T5Config(
                **t5, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id))),
            Part("unet", lambda: diffusers.UNet2DConditionModel(**pick(IF_I_XL_UNET, TINY_IF_UNET)))]


# ----------------------------------------------------------------------------- building

@dataclass
class BuiltModel:
    name: str  # one of MODELS
    folder: Path
    parameters: dict[str, int] = field(default_factory=dict)  # part -> parameter count
    seconds: float = 0.0  # build + save
    bytes: int = 0  # on disk


def _save(part: Part, obj: Any, folder: Path, dtype, parts: dict) -> None:
    """Cast, move to the CPU (safetensors writes host memory) and save in diffusers' layout."""
    import torch

    target = folder / part.name if part.name else folder
    if isinstance(obj, torch.nn.Module):
        parts[part.name or "weights"] = sum(p.numel() for p in obj.parameters())
        obj = obj.to(device="cpu", dtype=torch.float32 if part.fp32 else dtype)
    obj.save_pretrained(target)


def build_model_folder(name: str, folder: Path, tiny: bool, device: str) -> BuiltModel:
    """Random-weight parts of model `name` at full size (or tiny), saved under `folder` as the hub has them.

    Modules are created on `device` (random init of billions of parameters is much faster on a GPU), one
    part at a time (each is saved and freed before the next is made)."""
    import torch

    start = time.perf_counter()
    dtype = torch.float32 if tiny else torch.float16
    parts: dict[str, int] = {}
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    toks = [write_tokenizer(folder / sub) for sub in TOKENIZERS.get(name, ("tokenizer",))]
    with torch.device(device):
        for part in recipe(name, tiny, toks[0] if toks else None):
            _save(part, part.make(), folder, dtype, parts)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return BuiltModel(name, folder, parts, time.perf_counter() - start, size)
