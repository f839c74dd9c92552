"""The SDXL prior with tiny random parts saved in diffusers' layout: two text encoders, the pooled
token, added time ids, loading through from_pretrained, and TSM's gradient reaching the render."""

from __future__ import annotations

import pytest
import torch

from tiny_diffusers import TEXT_DIM, TEXT_LEN, sd_scheduler, tiny_clip, tiny_vae

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

POOLED = 16  # projection_dim of the second encoder
TIME_DIM = 4  # addition_time_embed_dim


def tiny_clip_with_projection(tokenizer):
    cfg = transformers.CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_DIM, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=TEXT_LEN, projection_dim=POOLED,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return transformers.CLIPTextModelWithProjection(cfg)


def tiny_xl_unet():
    return diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=2 * TEXT_DIM, attention_head_dim=4, norm_num_groups=8,
        addition_embed_type="text_time", addition_time_embed_dim=TIME_DIM,
        projection_class_embeddings_input_dim=6 * TIME_DIM + POOLED)


@pytest.fixture(scope="module")
def tiny_sdxl_folder(tokenizer, tmp_path_factory):  # `tokenizer`: conftest.py
    folder = tmp_path_factory.mktemp("tiny-sdxl")
    torch.manual_seed(0)
    tokenizer.save_pretrained(folder / "tokenizer")
    tokenizer.save_pretrained(folder / "tokenizer_2")
    tiny_clip(tokenizer).save_pretrained(folder / "text_encoder")
    tiny_clip_with_projection(tokenizer).save_pretrained(folder / "text_encoder_2")
    tiny_vae().save_pretrained(folder / "vae")
    tiny_xl_unet().save_pretrained(folder / "unet")
    sd_scheduler().save_pretrained(folder / "scheduler")
    return folder


@pytest.fixture(scope="module")
def prior(tiny_sdxl_folder):
    from dreamer.priors.sdxl import SDXLConfig, SDXLPrior

    return SDXLPrior(SDXLConfig(model=str(tiny_sdxl_folder)), device="cpu")


def test_loads_from_a_folder_and_encodes_both_encoders_plus_the_pooled_token(prior):
    assert prior.image_size == 16 and prior.latent_shape == (4, 8, 8) and prior.pooled_dim == POOLED
    emb = prior.encode_prompt("a red chair", "blurry")
    assert emb.cond.shape == (1, TEXT_LEN + 1, 2 * TEXT_DIM)
    assert torch.count_nonzero(emb.cond[0, -1, POOLED:]) == 0 and torch.count_nonzero(emb.cond[0, -1, :POOLED]) > 0
    assert torch.count_nonzero(emb.empty) == 0  # SDXL's zeroed empty prompt
    assert not torch.allclose(emb.cond, emb.uncond)


def test_time_ids_and_pooled_vector_reach_the_unet(prior):
    emb = prior.encode_prompt("a red chair")
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 600])
    text = emb.cond.expand(2, -1, -1)
    eps = prior.predict_noise(x, t, text)
    assert eps.shape == (2, 4, 8, 8) and torch.isfinite(eps).all()
    other = text.clone()
    other[:, -1, :POOLED] += 1.0  # only the pooled vector changes
    assert not torch.allclose(prior.predict_noise(x, t, other), eps)
    assert prior.time_ids(2, torch.float32).tolist() == [[16.0, 16.0, 0.0, 0.0, 16.0, 16.0]] * 2


def test_tsm_on_sdxl_reaches_only_the_render(prior):
    from dreamer.cameras import turntable
    from dreamer.guidance.tsm import TSM, TSMConfig

    images = torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    rule = TSM(TSMConfig(), prior, 10, torch.Generator().manual_seed(0))
    out = rule(images, prior.encode_prompt("a red cube", "ugly"), turntable(1, 16), 0)
    out.loss.backward()
    assert torch.isfinite(out.loss) and images.grad is not None and images.grad.abs().sum() > 0
    assert images.grad.abs().amax(dim=-1).max() <= 0.05 * (1 + 1e-5)  # the per-pixel clip on the render
    assert all(p.grad is None for p in prior.parameters())


def test_dreamerxl_preset_runs_two_steps_on_tiny_sdxl_parts(tiny_sdxl_folder, tmp_path):
    import dreamer

    result = dreamer.generate("a red cube", config="dreamerxl-tsm", out=tmp_path / "xl", steps=2,
                              dotted=["resolution=16", "trainer.preview_every=0", "export.mesh_resolution=32",
                                      "export.texture_size=64", "trainer.evaluate=false", f"prior.model={tiny_sdxl_folder}"],
                              trainer__progress=False, export__video=False)
    assert result.metrics["steps"] == 2 and result.mesh.is_file()
