"""Tiny random-weight diffusers/transformers parts built in code (a helper of conftest.py, not a test module).

Nothing is downloaded: the tokenizer is a handful of characters written to a folder, the networks are a
few thousand parameters each. The pytest fixtures over these builders live in tests/conftest.py.
diffusers and transformers are imported inside the builders, so importing this module stays light.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

TEXT_LEN = 32  # tokens per prompt in the tiny tokenizer
TEXT_DIM = 32  # text embedding width (= UNet cross-attention width)


def make_tokenizer(folder: Path):
    """A real CLIPTokenizer over single characters (no merges): enough to tell prompts apart."""
    import transformers

    chars = string.ascii_lowercase + string.digits + ",.-'"
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                                      model_max_length=TEXT_LEN)


def tiny_clip(tokenizer):
    import transformers

    cfg = transformers.CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_DIM, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=TEXT_LEN,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return transformers.CLIPTextModel(cfg)


def tiny_vae():
    import diffusers

    return diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4, sample_size=16)


def tiny_unet(in_channels=4, out_channels=4, sample_size=8):
    import diffusers

    return diffusers.UNet2DConditionModel(
        sample_size=sample_size, in_channels=in_channels, out_channels=out_channels, layers_per_block=1,
        block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=TEXT_DIM,
        attention_head_dim=4, norm_num_groups=8)


def sd_scheduler(prediction_type: str = "epsilon"):
    import diffusers

    return diffusers.DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                   prediction_type=prediction_type)


def sd_prior(tokenizer, prediction_type="epsilon", **kw):
    """A StableDiffusionPrior on tiny parts (native 16 px: UNet sample 8 × VAE factor 2, latents 4×8×8)."""
    from dreamer.priors.stable_diffusion import StableDiffusionPrior

    torch.manual_seed(0)
    return StableDiffusionPrior.from_components(tokenizer, tiny_clip(tokenizer), tiny_vae(), tiny_unet(),
                                                sd_scheduler(prediction_type), device="cpu", dtype="auto", **kw)


def save_sd_folder(tokenizer, folder: Path) -> Path:
    """A folder laid out like a diffusers Stable Diffusion checkpoint, with tiny random weights."""
    torch.manual_seed(0)
    tokenizer.save_pretrained(folder / "tokenizer")
    tiny_clip(tokenizer).save_pretrained(folder / "text_encoder")
    tiny_vae().save_pretrained(folder / "vae")
    tiny_unet().save_pretrained(folder / "unet")
    sd_scheduler().save_pretrained(folder / "scheduler")
    return folder


# ----------------------------------------------------------------------------- video parts (issue 22)

def tiny_motion_adapter():
    """A diffusers MotionAdapter matching `tiny_unet` (two blocks of 16/32 channels, one layer each)."""
    import diffusers

    return diffusers.MotionAdapter(
        block_out_channels=(16, 32), motion_layers_per_block=1, motion_num_attention_heads=2,
        motion_norm_num_groups=8, motion_max_seq_length=32, use_motion_mid_block=True)


def tiny_unet3d(sample_size=8):
    """A diffusers UNet3DConditionModel (zeroscope / ModelScope layout) with a few thousand parameters."""
    import diffusers

    return diffusers.UNet3DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=TEXT_DIM, attention_head_dim=4, norm_num_groups=8)


def save_motion_adapter_folder(folder: Path) -> Path:
    """A folder laid out like a hub MotionAdapter (config.json + weights at the top), tiny random weights."""
    torch.manual_seed(0)
    tiny_motion_adapter().save_pretrained(folder)
    return folder


def save_zeroscope_folder(tokenizer, folder: Path, prediction_type: str = "epsilon") -> Path:
    """A folder laid out like a zeroscope / ModelScope text-to-video pipeline, with tiny random weights."""
    torch.manual_seed(0)
    tokenizer.save_pretrained(folder / "tokenizer")
    tiny_clip(tokenizer).save_pretrained(folder / "text_encoder")
    tiny_vae().save_pretrained(folder / "vae")
    tiny_unet3d().save_pretrained(folder / "unet")
    sd_scheduler(prediction_type).save_pretrained(folder / "scheduler")
    return folder
