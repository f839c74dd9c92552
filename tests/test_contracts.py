"""The contracts of docs/architecture.md, checked over every component the registry lists (dreamer/registry.py).

Representations, guidance rules and the priors that need no downloaded weights are iterated from
the registry tables, never from a hand-kept list, so a new component is held to its contract by
adding its registry line. Sizes are tiny (16 px renders, a batch of 2) so the file runs in seconds.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dreamer import registry
from dreamer.cameras import Camera, VIEW_LABELS, clip_cameras, frame_times, from_spherical
from dreamer.errors import UserError
from dreamer.guidance.base import Guidance, GuidanceOutput
from dreamer.priors.base import Prior, PromptEmbedding
from dreamer.representations.base import RenderOutput, Representation
from fakes import FakePixelPrior, FakeVideoPrior

B, S = 2, 16  # batch and image side used throughout

# Tiny sizes per component: only fields the config has are applied, unknown names build from defaults.
SMALL = {
    "representation": {
        "grid_resolution": 8, "num_samples": 16, "occupancy_resolution": 8, "num_gaussians": 256,
        "colour_grid_resolution": 16, "max_gaussians": 1024, "plane_resolution": 8, "time_resolution": 4,
    },
    "prior": {"image_size": S, "num_views": 8, "uncond_views": 1, "num_frames": 4, "num_phases": 4,
              "uncond_shapes": ("cube", "sphere")},
}


def _small_config(kind: str, name: str):
    config = registry.default_config(kind, name)
    fields = {f.name for f in dataclasses.fields(config)}
    return dataclasses.replace(config, **{k: v for k, v in SMALL.get(kind, {}).items() if k in fields})


def _cameras(n: int = B, size: int = S):
    """Cameras at different azimuths (front, side, back, ...) around the origin."""
    return from_spherical(torch.tensor([0.0, 90.0, 180.0, 270.0][:n]), 15.0, 2.8, 40.0, size)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# =============================================================================== representations

REPRESENTATIONS = sorted(registry.REPRESENTATIONS)
WHITE = torch.ones(3)


def _representation(name: str, seed: int = 0) -> Representation:
    torch.manual_seed(seed)  # parameter initialisation
    return registry.component_class("representation", name)(_small_config("representation", name))


def _render(rep: Representation, cameras, seed: int = 0) -> RenderOutput:
    torch.manual_seed(seed)  # any sample jitter draws from the global RNG: fix it for comparisons
    return rep.render(cameras, WHITE)


@pytest.fixture(scope="module", params=REPRESENTATIONS)
def representation_name(request):
    return request.param


def test_registry_lists_representations():
    assert REPRESENTATIONS, "no representation registered"


def test_representation_renders_the_contract_shapes_and_ranges(representation_name):
    rep = _representation(representation_name)
    assert isinstance(rep, Representation)
    out = _render(rep, _cameras())
    assert isinstance(out, RenderOutput)
    assert out.rgb.shape == (B, S, S, 3) and out.rgb.dtype == torch.float32
    assert out.alpha.shape == (B, S, S, 1)
    assert torch.isfinite(out.rgb).all() and out.rgb.min() >= 0 and out.rgb.max() <= 1
    assert torch.isfinite(out.alpha).all() and out.alpha.min() >= 0 and out.alpha.max() <= 1
    assert torch.isfinite(out.depth).all() and out.depth.shape[:3] == (B, S, S)
    assert isinstance(out.extras, dict)
    assert out.alpha.max() > 0, "the default initial shape should cover some pixels"
    # The background shows where nothing covers: white over a transparent pixel.
    empty = out.alpha[..., 0] < 1e-4
    if empty.any():
        torch.testing.assert_close(out.rgb[empty], torch.ones_like(out.rgb[empty]), atol=1e-3, rtol=0)


def test_representation_parameter_groups_receive_finite_gradients_from_the_render(representation_name):
    rep = _representation(representation_name)
    groups = rep.parameter_groups()
    assert isinstance(groups, list) and groups
    for group in groups:
        assert {"params", "lr", "name"} <= set(group), group.keys()
        assert group["lr"] > 0 and all(isinstance(p, torch.nn.Parameter) for p in group["params"])
    out = _render(rep, _cameras())
    weights = torch.rand(out.rgb.shape, generator=_gen(0))  # no cancellation of the gradient by symmetry
    (out.rgb * weights).sum().backward()
    params = [p for g in groups for p in g["params"]]
    grads = [p.grad for p in params if p.grad is not None]
    assert grads, "no parameter in parameter_groups() received a gradient"
    assert all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    # parameter_groups(lr_scale) scales every learning rate.
    scaled = rep.parameter_groups(lr_scale=0.5)
    assert [g["lr"] for g in scaled] == pytest.approx([0.5 * g["lr"] for g in groups])


def test_representation_state_dict_round_trips_into_a_fresh_instance(representation_name):
    rep = _representation(representation_name, seed=0)
    cams = _cameras()
    opt = torch.optim.Adam(rep.parameter_groups())  # one step: the saved state is not the initial one
    opt.zero_grad()
    _render(rep, cams).rgb.mean().backward()
    opt.step()
    with torch.no_grad():
        expected = _render(rep, cams, seed=5)
    state = rep.state_dict()
    fresh = _representation(representation_name, seed=1)
    with torch.no_grad():
        before = _render(fresh, cams, seed=5)
    assert not torch.equal(before.rgb, expected.rgb), "test set-up: the fresh instance should differ before loading"
    fresh.load_state_dict(state)
    with torch.no_grad():
        got = _render(fresh, cams, seed=5)
    torch.testing.assert_close(got.rgb, expected.rgb, rtol=0, atol=1e-6)
    torch.testing.assert_close(got.alpha, expected.alpha, rtol=0, atol=1e-6)
    torch.testing.assert_close(got.depth, expected.depth, rtol=0, atol=1e-5)


def test_representation_to_mesh_returns_a_coloured_trimesh(representation_name):
    import trimesh

    rep = _representation(representation_name)
    mesh = rep.to_mesh(32)
    assert isinstance(mesh, trimesh.Trimesh)
    # The untrained default is a blob / ball / sphere of matter: its mesh is not empty.
    assert len(mesh.vertices) > 0 and len(mesh.faces) > 0
    v = torch.as_tensor(mesh.vertices)
    assert torch.isfinite(v).all()
    bound = getattr(rep.config, "bound", 1.0)
    assert v.abs().max() <= bound + 1e-3
    assert mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices)
    colours = mesh.visual.vertex_colors
    assert colours.shape == (len(mesh.vertices), 4) and str(colours.dtype) == "uint8"


# =============================================================================== guidance rules

RULES = sorted(registry.GUIDANCES)
FRAMES = 3  # frames of the clips given to the rules that take only clips
PROMPT, NEGATIVE = "a red chair", "blurry"


def _rule(name: str, prior, seed: int, total_steps: int = 100) -> Guidance:
    torch.manual_seed(0)  # initialisation of any model the rule trains (a particle's weights)
    config = registry.default_config("guidance", name)
    return registry.component_class("guidance", name)(config, prior, total_steps, _gen(seed))


def _guide(name: str, seed: int, global_seed: int):
    """One call of the rule on a fixed batch; the global RNG is set to `global_seed` first
    (the contract: randomness comes only from the generator passed in). A rule that takes no single
    images (video SDS) gets clips [B, F, S, S, 3] and a video prior."""
    clips = not registry.default_config("guidance", name).takes_images
    prior = FakeVideoPrior(S, FRAMES, camera_conditioned=True) if clips else FakePixelPrior(S, camera_conditioned=True)
    emb = prior.encode_prompt(PROMPT, NEGATIVE, view_dependent=True)
    rule = _rule(name, prior, seed)
    shape = (B, FRAMES, S, S, 3) if clips else (B, S, S, 3)
    images = torch.rand(*shape, generator=_gen(1)).requires_grad_(True)
    cameras = clip_cameras(_cameras(), frame_times(FRAMES)) if clips else _cameras()
    torch.manual_seed(global_seed)
    out = rule(images, emb, cameras, step=10)
    out.loss.backward()
    return rule, prior, images, out


def test_registry_lists_guidance_rules():
    assert RULES, "no guidance rule registered"


@pytest.mark.parametrize("name", RULES)
def test_guidance_gives_a_finite_loss_whose_gradient_reaches_the_images(name):
    rule, prior, images, out = _guide(name, seed=3, global_seed=0)
    assert isinstance(rule, Guidance) and isinstance(out, GuidanceOutput)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.grad_norm.ndim == 0 and torch.isfinite(out.grad_norm)
    assert out.t.shape == (B,) and out.t.dtype == torch.long
    assert (out.t >= 0).all() and (out.t < prior.num_train_timesteps).all()
    assert isinstance(out.extras, dict)
    assert images.grad is not None and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in prior.parameters()), "the prior is frozen"


@pytest.mark.parametrize("name", RULES)
def test_guidance_trainable_parameters_are_exactly_what_the_rule_trains(name):
    rule, prior, _, _ = _guide(name, seed=3, global_seed=0)
    trainable = rule.trainable_parameters()
    assert isinstance(trainable, list)
    frozen = {id(p) for p in prior.parameters()}
    own = [p for p in rule.parameters() if p.requires_grad and id(p) not in frozen]
    assert {id(p) for p in trainable} == {id(p) for p in own}
    assert len({id(p) for p in trainable}) == len(trainable), "a parameter listed twice"
    named = {k for k, p in rule.named_parameters() if id(p) in {id(q) for q in trainable}}
    assert set(rule.checkpoint_state()) == named, "a checkpoint keeps exactly the trained parameters"
    if trainable:  # the rule trains a particle model: the loss carries its training signal
        grads = [p.grad for p in trainable if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_vsd_and_esd_train_a_particle_model_and_the_others_do_not():
    """docs/architecture.md: trainable_parameters() is non-empty for the rules that train something (VSD/ESD LoRA)."""
    image, video = FakePixelPrior(S, camera_conditioned=True), FakeVideoPrior(S, FRAMES, camera_conditioned=True)
    trains = {name for name in RULES
              if _rule(name, image if registry.default_config("guidance", name).takes_images else video,
                       seed=0).trainable_parameters()}
    assert trains == {"vsd", "esd"} & set(RULES)


@pytest.mark.parametrize("name", RULES)
def test_guidance_is_deterministic_for_a_fixed_generator_seed(name):
    runs = [_guide(name, seed=seed, global_seed=global_seed) for seed, global_seed in ((3, 0), (3, 1), (4, 0))]
    (_, _, images_a, a), (_, _, images_b, b), (_, _, images_c, c) = runs
    assert torch.equal(a.t, b.t) and torch.equal(a.loss, b.loss)
    assert torch.equal(images_a.grad, images_b.grad), "the global RNG changed the result"
    assert not torch.equal(images_a.grad, images_c.grad), "another generator seed gave the same gradient"


# =============================================================================== priors without weights

def _needs_downloaded_weights(name: str) -> bool:
    """The diffusers-backed priors name a model (hub id or local folder) in their config; the embedded
    ones (reference, tiny: no model to name) do not."""
    return "model" in {f.name for f in dataclasses.fields(registry.config_class("prior", name))}


def _is_video(name: str) -> bool:
    return registry.component_class("prior", name).is_video


EMBEDDED = sorted(name for name in registry.PRIORS if not _needs_downloaded_weights(name) and not _is_video(name))
EMBEDDED_VIDEO = sorted(name for name in registry.PRIORS if not _needs_downloaded_weights(name) and _is_video(name))


def test_the_embedded_priors_are_registered():
    assert {"reference", "tiny"} <= set(EMBEDDED)
    assert {"reference-video"} <= set(EMBEDDED_VIDEO)


@pytest.fixture(scope="module", params=EMBEDDED)
def embedded_prior(request) -> Prior:
    return registry.component_class("prior", request.param)(_small_config("prior", request.param), "cpu")


def test_prior_schedule_and_attributes(embedded_prior):
    p = embedded_prior
    assert isinstance(p, Prior)
    T = p.num_train_timesteps
    assert isinstance(T, int) and T > 1
    acp = p.alphas_cumprod
    assert acp.shape == (T,) and acp.is_floating_point()
    assert (acp > 0).all() and (acp < 1).all()
    assert (acp[1:] < acp[:-1]).all(), "ᾱ_t must decrease strictly"
    assert isinstance(p.image_size, int) and len(p.latent_shape) == 3
    assert not any(q.requires_grad for q in p.parameters()), "a prior is frozen"


def test_prior_encode_prompt(embedded_prior):
    p = embedded_prior
    emb = p.encode_prompt("a red cube", "a blue sphere", view_dependent=True)
    assert isinstance(emb, PromptEmbedding) and emb.prompt == "a red cube"
    assert emb.cond.shape[0] == 1 and emb.uncond.shape == emb.cond.shape
    assert set(emb.views) <= set(VIEW_LABELS)
    for v in emb.views.values():
        assert v.shape == emb.cond.shape
    if emb.empty is not None:
        assert emb.empty.shape == emb.cond.shape
    assert not torch.equal(emb.cond, emb.uncond)
    other = p.encode_prompt("a green sphere")
    assert not torch.equal(other.cond, emb.cond), "two prompts encode the same"
    assert emb.conditional(_cameras(), B).shape == (B, *emb.cond.shape[1:])
    assert emb.unconditional(B).shape == (B, *emb.cond.shape[1:])


def test_prior_encode_images_is_differentiable_and_decode_returns_images(embedded_prior):
    p = embedded_prior
    rgb = torch.rand(B, 3, S + 8, S + 8, generator=_gen(0)).requires_grad_(True)  # any size is resized
    z = p.encode_images(rgb)
    assert z.shape == (B, *p.latent_shape) and z.dtype == torch.float32 and torch.isfinite(z).all()
    (z * torch.randn(z.shape, generator=_gen(1))).sum().backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0
    assert all(q.grad is None for q in p.parameters())
    with torch.no_grad():
        img = p.decode(z.detach())
    assert img.shape == (B, 3, p.image_size, p.image_size) and torch.isfinite(img).all()
    assert img.min() >= 0 and img.max() <= 1


def test_prior_predict_noise_has_the_input_shape(embedded_prior):
    p = embedded_prior
    views = p.views_per_sample  # a multi-view prior takes B samples of V views (its declaration)
    assert isinstance(views, int) and views >= 1
    n = B * views
    emb = p.encode_prompt("a red cube", view_dependent=True)
    cams = Camera.cat([_cameras(size=p.image_size)] * views)
    x_t = torch.randn(n, *p.latent_shape, generator=_gen(2))
    t = torch.tensor([10, p.num_train_timesteps - 10]).repeat_interleave(views)
    with torch.no_grad():
        with_camera = p.predict_noise(x_t, t, emb.conditional(cams, n), cams)
        if p.needs_camera:  # renders its estimate at the cameras: no camera-free branch, refused in one line
            with pytest.raises(UserError, match="needs a camera"):
                p.predict_noise(x_t, t, emb.conditional(None, n))
            without = with_camera
        else:
            without = p.predict_noise(x_t, t, emb.conditional(None, n))
    for eps in (with_camera, without):
        assert eps.shape == x_t.shape and eps.dtype == torch.float32 and torch.isfinite(eps).all()


# =============================================================================== video priors without weights
# The image contract with a frame axis (dreamer/priors/video.py): clips [B, F, 3, H, W] in, [B, F, ...] out.

PROMPT_4D = "a red cube bouncing"


@pytest.fixture(scope="module", params=EMBEDDED_VIDEO)
def embedded_video_prior(request) -> Prior:
    return registry.component_class("prior", request.param)(_small_config("prior", request.param), "cpu")


def test_video_prior_attributes(embedded_video_prior):
    p = embedded_video_prior
    assert p.is_video and isinstance(p.num_frames, int) and p.num_frames >= 2
    assert p.alphas_cumprod.shape == (p.num_train_timesteps,) and len(p.latent_shape) == 3
    assert not any(q.requires_grad for q in p.parameters()), "a prior is frozen"


def test_video_prior_encodes_clips_differentiably_and_decodes_them(embedded_video_prior):
    p = embedded_video_prior
    F = p.num_frames
    rgb = torch.rand(B, F, 3, S + 8, S + 8, generator=_gen(0)).requires_grad_(True)
    z = p.encode_images(rgb)
    assert z.shape == (B, F, *p.latent_shape) and torch.isfinite(z).all()
    (z * torch.randn(z.shape, generator=_gen(1))).sum().backward()
    assert rgb.grad is not None and rgb.grad.abs().sum() > 0
    with torch.no_grad():
        clip = p.decode(z.detach())
    assert clip.shape == (B, F, 3, p.image_size, p.image_size) and clip.min() >= 0 and clip.max() <= 1


def test_video_prior_predict_noise_has_the_clip_shape(embedded_video_prior):
    p = embedded_video_prior
    F = p.num_frames
    emb = p.encode_prompt(PROMPT_4D, "static")
    assert emb.cond.shape[0] == 1 and not torch.equal(emb.cond, emb.uncond)
    cams = clip_cameras(_cameras(size=p.image_size), frame_times(F))
    x_t = torch.randn(B, F, *p.latent_shape, generator=_gen(2))
    t = torch.tensor([10, p.num_train_timesteps - 10])
    with torch.no_grad():
        for camera in (cams, None):
            eps = p.predict_noise(x_t, t, emb.conditional(camera, B), camera)
            assert eps.shape == x_t.shape and eps.dtype == torch.float32 and torch.isfinite(eps).all()


def test_video_prior_refuses_single_images_and_network_fine_tuning(embedded_video_prior):
    from dreamer.errors import UserError

    p = embedded_video_prior
    with pytest.raises(UserError, match="takes clips"):
        p.encode_images(torch.rand(B, 3, S, S))
    with pytest.raises(UserError, match="video prior"):
        p.network()
