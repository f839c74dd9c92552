"""The CUDA paths against the CPU paths (issue 21; run on a GPU by bench/gpu_check.sh).

Every test here skips without CUDA, so the CPU suite only collects them. On a GPU:
- Gaussians: gsplat's `rasterization` (backend="gsplat") against our tile rasterizer (backend="torch",
  on the CPU): the same Gaussians and cameras give the same rgb / alpha / depth, and the same gradients
  with respect to the means, colours (sh0) and opacities; the same for 4D Gaussians (a moved deformation
  field and track) at three times, with the gradients of the field and the track;
- NeRF: nerfacc's occupancy-grid estimator (backend="nerfacc") against the CPU sample skip, both using
  the same occupancy grid: the same renders up to sampling error (nerfacc marches fixed steps, the
  CPU path takes stratified samples), and gradients pointing the same way;
- priors in fp16 against fp32: the shipped tiny prior, Stable Diffusion and SDXL (tiny random-weight
  parts loaded through from_pretrained) give the same ε̂; SDXL's VAE stays fp32 under dtype "auto"
  (fp16 gives NaN in the real SDXL VAE).
Tolerances are stated beside each assertion.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="CUDA paths: needs a CUDA GPU (bench/gpu_check.sh runs these on one)")

ROOT = Path(__file__).resolve().parent.parent


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ over all elements (float64, on the CPU)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu().flatten(), b.detach().double().cpu().flatten()
    return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-30))


def cameras(n: int, width: int, height: int | None = None):
    from dreamer.cameras import from_spherical

    return from_spherical(torch.linspace(0.0, 300.0, n), torch.linspace(-10.0, 40.0, n), 2.8, 42.5, width, height)


# ----------------------------------------------------------------------------- gsplat vs the tile rasterizer

def _gaussians(backend: str):
    from dreamer.representations.gaussians import Gaussians, GaussiansConfig

    torch.manual_seed(0)
    cfg = GaussiansConfig(num_gaussians=2000, init="ball", init_radius=0.6, sh_degree=0, densify=False,
                          background="white", backend=backend)
    model = Gaussians(cfg)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # varied colours and opacities (the init is one grey at opacity 0.1)
        model.params["sh0"].copy_(torch.randn(model.params["sh0"].shape, generator=g))
        model.params["opacities"].copy_(torch.logit(0.2 + 0.7 * torch.rand(model.num_gaussians, generator=g)))
    return model


def test_gsplat_rasterization_matches_the_cpu_tile_rasterizer():
    cpu = _gaussians("torch")
    gpu = _gaussians("gsplat")
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda()
    assert gpu._backend(torch.device("cuda")) == "gsplat"
    cams = cameras(3, 64, 48)
    white = torch.ones(3)
    a = cpu.render(cams, background=white)
    b = gpu.render(cams.to("cuda"), background=white.cuda())
    assert a.alpha.amax() > 0.9 and a.alpha.amin() < 0.1  # covered and empty pixels both present

    # values: max |Δ| ≤ 2e-3 for rgb and alpha in [0, 1] (float32 sums in another order; gsplat's own
    # kernel transcription matches ours to 1e-4 in tests/test_splat_raster.py)
    assert (a.rgb - b.rgb.cpu()).abs().max() <= 2e-3
    assert (a.alpha - b.alpha.cpu()).abs().max() <= 2e-3
    # depth (Σ w z / Σ w, camera z ≈ 2.2–3.4) where a pixel is mostly covered: |Δ| ≤ 1e-2
    covered = (a.alpha > 0.5) & (b.alpha.cpu() > 0.5)
    assert covered.sum() > 100
    assert (a.depth - b.depth.cpu()).abs()[covered].max() <= 1e-2

    # gradients of one fixed random linear loss of rgb and alpha
    g = torch.Generator().manual_seed(2)
    w_rgb, w_alpha = torch.randn(a.rgb.shape, generator=g), torch.randn(a.alpha.shape, generator=g)
    ((a.rgb * w_rgb).sum() + (a.alpha * w_alpha).sum()).backward()
    ((b.rgb * w_rgb.cuda()).sum() + (b.alpha * w_alpha.cuda()).sum()).backward()
    # relative L2 error ≤ 2e-2 for the means (through the 2D projection and its Jacobian), ≤ 1e-2 for
    # colours (sh0) and opacity logits; directions agree to cosine ≥ 0.999
    for name, tol in (("means", 2e-2), ("sh0", 1e-2), ("opacities", 1e-2)):
        ga, gb = cpu.params[name].grad, gpu.params[name].grad
        assert ga is not None and gb is not None, name
        assert ga.abs().sum() > 0, name
        assert rel_err(gb, ga) <= tol, (name, rel_err(gb, ga))
        assert cosine(gb, ga) >= 0.999, (name, cosine(gb, ga))


def _gaussians4d(backend: str):
    """4D Gaussians with a moved field and track (not the identity), in the motion stage."""
    from dreamer.representations.gaussians4d import Gaussians4D, Gaussians4DConfig

    torch.manual_seed(0)
    model = Gaussians4D(Gaussians4DConfig(num_gaussians=2000, init="ball", init_radius=0.5, densify=False,
                                          background="white", backend=backend, plane_resolution=16,
                                          time_resolution=8))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model.params["sh0"].copy_(torch.randn(model.params["sh0"].shape, generator=g))
        model.params["opacities"].copy_(torch.logit(0.2 + 0.7 * torch.rand(model.num_gaussians, generator=g)))
        for p in model.deformation.parameters():  # every head away from zero: a real local deformation
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        model.track.translation.copy_(0.2 * torch.randn(model.track.translation.shape, generator=g))
        model.track.rotation.copy_(0.3 * torch.randn(model.track.rotation.shape, generator=g))
    model.set_stage("motion")
    return model


def test_gaussians4d_on_gsplat_matches_the_cpu_tile_rasterizer_at_several_times():
    cpu = _gaussians4d("torch")
    gpu = _gaussians4d("gsplat")
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda()
    cams = cameras(3, 64, 48).with_time([0.1, 0.45, 0.8])
    white = torch.ones(3)
    a = cpu.render(cams, background=white)
    b = gpu.render(cams.to("cuda"), background=white.cuda())
    # the same tolerances as the static Gaussians above (the deformation runs in float32 on both)
    assert (a.rgb - b.rgb.cpu()).abs().max() <= 2e-3
    assert (a.alpha - b.alpha.cpu()).abs().max() <= 2e-3
    g = torch.Generator().manual_seed(2)
    w = torch.randn(a.rgb.shape, generator=g)
    (a.rgb * w).sum().backward()
    (b.rgb * w.cuda()).sum().backward()
    for name, module_a, module_b in (("track", cpu.track, gpu.track), ("field", cpu.deformation, gpu.deformation)):
        ga = torch.cat([p.grad.flatten() for p in module_a.parameters() if p.grad is not None])
        gb = torch.cat([p.grad.flatten() for p in module_b.parameters() if p.grad is not None])
        assert ga.abs().sum() > 0, name
        assert cosine(gb, ga) >= 0.999, (name, cosine(gb, ga))


# ----------------------------------------------------------------------------- nerfacc vs the CPU sample skip

def _nerf(backend: str):
    from dreamer.representations.nerf import NeRF, NeRFConfig

    torch.manual_seed(0)
    model = NeRF(NeRFConfig(backend=backend, background="white", grid_resolution=64))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # structure beyond the initial blob: colour and density vary in space
        for p in model.encoding.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return model


def test_nerfacc_occupancy_estimator_matches_the_cpu_sample_skip():
    cpu = _nerf("torch").eval()
    cpu.update_occupancy(generator=torch.Generator().manual_seed(0))
    occupied = float(cpu.occupancy_mask.float().mean())
    assert 0.005 < occupied < 0.9, occupied  # the grid both keeps and skips cells: the skip is exercised
    gpu = _nerf("nerfacc")
    gpu.load_state_dict(cpu.state_dict())  # the same field and the same occupancy grid
    gpu = gpu.cuda().eval()
    assert gpu._backend(torch.device("cuda")) == "nerfacc"
    cams = cameras(2, 48)
    a = cpu.render(cams)
    b = gpu.render(cams.to("cuda"))
    assert a.alpha.amax() > 0.9 and a.alpha.amin() < 0.1
    # nerfacc marches fixed steps of 2·bound/num_samples from the box entry; the CPU path takes num_samples
    # midpoints between entry and exit: equal up to quadrature error (on the CPU, 64 against 128 samples of
    # this field differ by 1e-4 on average and 3e-3 at worst). Mean |Δ| ≤ 5e-3 (rgb and alpha), worst
    # pixel ≤ 0.05 (alpha)
    d_rgb, d_alpha = (a.rgb - b.rgb.cpu()).abs(), (a.alpha - b.alpha.cpu()).abs()
    assert d_rgb.mean() <= 5e-3, float(d_rgb.mean())
    assert d_alpha.mean() <= 5e-3, float(d_alpha.mean())
    assert d_alpha.max() <= 0.05, float(d_alpha.max())
    # the samples nerfacc kept are of the same order as the CPU skip's (within a factor of 2)
    n_cpu, n_gpu = a.extras["num_samples"], b.extras["num_samples"]
    assert 0.5 * n_cpu <= n_gpu <= 2.0 * n_cpu, (n_cpu, n_gpu)

    # gradients (eval-mode renders: no jitter) of one fixed random linear loss: cosine ≥ 0.9 over all
    # parameters (the two quadratures differ, so only the direction is compared)
    g = torch.Generator().manual_seed(2)
    w = torch.randn(a.rgb.shape, generator=g)
    (a.rgb * w).sum().backward()
    (b.rgb * w.cuda()).sum().backward()
    ga = torch.cat([p.grad.flatten() for p in cpu.parameters() if p.grad is not None])
    gb = torch.cat([p.grad.flatten().cpu() for p in gpu.parameters() if p.grad is not None])
    assert ga.shape == gb.shape and torch.isfinite(gb).all()
    assert cosine(gb, ga) >= 0.9, cosine(gb, ga)


# ----------------------------------------------------------------------------- fp16 vs fp32 priors

def test_tiny_prior_fp16_matches_fp32():
    from dreamer.priors.tiny.prior import TinyPrior, TinyPriorConfig

    weights = str(ROOT / "assets" / "priors" / "tiny")
    p32 = TinyPrior(TinyPriorConfig(weights=weights, dtype="fp32"), device="cuda")
    p16 = TinyPrior(TinyPriorConfig(weights=weights, dtype="auto"), device="cuda")
    assert p16.model_dtype == torch.float16 and p32.model_dtype == torch.float32  # auto = fp16 on CUDA
    g = torch.Generator().manual_seed(0)
    B, (C, S, _) = 4, p32.latent_shape
    x_t = torch.randn(B, C, S, S, generator=g).cuda()
    t = torch.tensor([30, 300, 600, 950], device="cuda")
    text = (0.5 * torch.randn(B, p32.info.max_length, p32.info.unet.text_dim, generator=g)).cuda()
    cams = cameras(B, S)
    e32 = p32.predict_noise(x_t, t, text, cams)
    e16 = p16.predict_noise(x_t, t, text, cams)
    assert torch.isfinite(e16).all()
    # ε̂ has unit scale: relative L2 error ≤ 1e-2 (fp16 carries ~3 decimal digits)
    assert rel_err(e16, e32) <= 1e-2, rel_err(e16, e32)


def test_stable_diffusion_fp16_matches_fp32(tiny_sd_folder):  # conftest: tiny random parts in diffusers' layout
    from dreamer.priors.stable_diffusion import StableDiffusionConfig, StableDiffusionPrior

    p32 = StableDiffusionPrior(StableDiffusionConfig(model=str(tiny_sd_folder), dtype="fp32"), device="cuda")
    p16 = StableDiffusionPrior(StableDiffusionConfig(model=str(tiny_sd_folder), dtype="auto"), device="cuda")
    assert p16.unet.dtype == torch.float16 and p32.unet.dtype == torch.float32
    emb32 = p32.encode_prompt("a red chair", view_dependent=True)
    emb16 = p16.encode_prompt("a red chair", view_dependent=True)
    assert rel_err(emb16.cond, emb32.cond) <= 1e-2  # text encoder: relative L2 ≤ 1e-2
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 32, 32, generator=g).cuda()
    z32, z16 = p32.encode_images(rgb), p16.encode_images(rgb)
    assert z16.dtype == torch.float32 and rel_err(z16, z32) <= 1e-2  # VAE latents: relative L2 ≤ 1e-2
    x_t = torch.randn(z32.shape, generator=g).cuda()
    t = torch.tensor([50, 800], device="cuda")
    text = emb32.cond.expand(2, -1, -1)  # the same conditioning for both: only the UNet's precision differs
    e32, e16 = p32.predict_noise(x_t, t, text), p16.predict_noise(x_t, t, text)
    assert e16.dtype == torch.float32 and torch.isfinite(e16).all()
    assert rel_err(e16, e32) <= 1e-2, rel_err(e16, e32)  # ε̂: relative L2 ≤ 1e-2


@pytest.fixture(scope="module")
def tiny_sdxl_folder(tokenizer, tmp_path_factory):  # `tokenizer`: conftest.py
    """SDXL's layout with tiny random parts; the VAE's config is SDXL's (force_upcast true)."""
    import diffusers
    import transformers

    from tiny_diffusers import TEXT_DIM, TEXT_LEN, sd_scheduler, tiny_clip, tiny_vae

    pooled, time_dim = 16, 4
    folder = tmp_path_factory.mktemp("tiny-sdxl-cuda")
    torch.manual_seed(0)
    tokenizer.save_pretrained(folder / "tokenizer")
    tokenizer.save_pretrained(folder / "tokenizer_2")
    tiny_clip(tokenizer).save_pretrained(folder / "text_encoder")
    transformers.CLIPTextModelWithProjection(transformers.CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_DIM, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=TEXT_LEN, projection_dim=pooled,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)).save_pretrained(folder / "text_encoder_2")
    vae = tiny_vae()
    vae.register_to_config(force_upcast=True, scaling_factor=0.13025)
    vae.save_pretrained(folder / "vae")
    diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=2 * TEXT_DIM, attention_head_dim=4, norm_num_groups=8,
        addition_embed_type="text_time", addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + pooled).save_pretrained(folder / "unet")
    sd_scheduler().save_pretrained(folder / "scheduler")
    return folder


def test_sdxl_vae_stays_fp32_and_fp16_unet_matches_fp32(tiny_sdxl_folder):
    from dreamer.priors.sdxl import SDXLConfig, SDXLPrior

    p16 = SDXLPrior(SDXLConfig(model=str(tiny_sdxl_folder)), device="cuda")  # dtype "auto"
    assert p16.unet.dtype == torch.float16 and p16.text_encoder_2.dtype == torch.float16
    assert p16.vae.dtype == torch.float32  # SDXL's VAE is never run in fp16 (issue 21)
    rgb = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0)).cuda().requires_grad_()
    z = p16.encode_images(rgb)
    assert z.dtype == torch.float32 and torch.isfinite(z).all()
    z.sum().backward()
    assert torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0
    assert torch.isfinite(p16.decode(z.detach())).all()

    p32 = SDXLPrior(SDXLConfig(model=str(tiny_sdxl_folder), dtype="fp32"), device="cuda")
    emb = p32.encode_prompt("a red chair", "blurry")
    g = torch.Generator().manual_seed(1)
    x_t = torch.randn(2, *p32.latent_shape, generator=g).cuda()
    t = torch.tensor([50, 800], device="cuda")
    text = emb.cond.expand(2, -1, -1)
    e32, e16 = p32.predict_noise(x_t, t, text), p16.predict_noise(x_t, t, text)
    assert torch.isfinite(e16).all()
    assert rel_err(e16, e32) <= 1e-2, rel_err(e16, e32)  # ε̂: relative L2 ≤ 1e-2
