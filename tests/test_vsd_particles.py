"""Several VSD/ESD particles: n assets sharing one LoRA, rendered round-robin, saved and exported each."""

from __future__ import annotations

import json

import pytest
import torch

from dreamer.cameras import from_spherical
from dreamer.errors import UserError
from dreamer.representations.gaussians import Gaussians, GaussiansConfig
from dreamer.representations.particles import ParticleSet, particle_members

COMMON = dict(steps=4, trainer__progress=False, export__video=False)


def _cameras(n: int):
    return from_spherical(torch.linspace(0, 270, n), torch.full((n,), 15.0), torch.full((n,), 2.8), 42.5, 16)


def _gaussian_set(n: int = 2, **overrides) -> ParticleSet:
    torch.manual_seed(0)
    config = dict(init="shape", init_shape="a red cube", num_gaussians=400, init_opacity=0.6)
    return ParticleSet([Gaussians(GaussiansConfig(**{**config, **overrides})) for _ in range(n)])


def test_training_renders_hand_cameras_out_round_robin_and_evaluation_shows_one_particle():
    particles = _gaussian_set(3)
    with torch.no_grad():  # make the members tell apart: member i is shifted along x
        for i, member in enumerate(particles.members):
            member.params["means"] += torch.tensor([0.3 * i, 0.0, 0.0])
    cams = _cameras(2)
    for step, expected in ((0, [0, 1]), (1, [2, 0]), (2, [1, 2])):  # camera b of step s -> (s·B + b) mod n
        particles.before_step(step)
        assert particles.assignment(2).tolist() == expected
        out = particles.render(cams)
        for b, index in enumerate(expected):
            alone = particles.members[index].render(cams[b])
            torch.testing.assert_close(out.rgb[b:b + 1], alone.rgb)
            torch.testing.assert_close(out.alpha[b:b + 1], alone.alpha)
    particles.eval()
    shown = particles.render(cams)
    torch.testing.assert_close(shown.rgb, particles.members[0].render(cams).rgb)


def test_one_step_updates_only_the_rendered_particle_and_densifies_it_consistently():
    particles = _gaussian_set(2, refine_start=0, refine_every=1, grow_grad2d=1e-7, prune_opacity=0.0)
    groups = particles.parameter_groups()
    assert sorted({g["particle"] for g in groups}) == [0, 1]
    opt = torch.optim.Adam(groups)
    before = [m.params["means"].detach().clone() for m in particles.members]
    particles.before_step(1)  # batch of 1 at step 1 -> particle 1
    out = particles.render(_cameras(1))
    opt.zero_grad()
    out.rgb.mean().backward()
    opt.step()
    particles.after_step(1, opt)
    assert torch.equal(particles.members[0].params["means"], before[0])  # not rendered: untouched
    grown = particles.members[1].num_gaussians
    assert grown > before[1].shape[0]  # rendered: stepped and densified
    for group in opt.param_groups:  # the optimizer holds every member's current tensors
        (p,) = group["params"]
        member = particles.members[group["particle"]]
        if group["name"] in member.params:
            assert p is member.params[group["name"]]
            assert p.shape[0] == member.num_gaussians


def test_a_checkpoint_restores_members_of_different_sizes_and_rejects_another_count():
    particles = _gaussian_set(2)
    with torch.no_grad():
        particles.members[1].params["means"].data = particles.members[1].params["means"][:300].clone()
        for name in ("scales", "quats", "opacities", "sh0", "shN"):
            p = particles.members[1].params[name]
            p.data = p[:300].clone()
    state = particles.state_dict()
    fresh = _gaussian_set(2)
    fresh.load_state_dict(state)
    assert [m.num_gaussians for m in fresh.members] == [400, 300]
    assert torch.equal(fresh.members[1].params["means"], particles.members[1].params["means"])
    with pytest.raises(UserError, match="another `particles` count"):
        _gaussian_set(2).load_state_dict({**state, "members.2.params.means": torch.zeros(1, 3)})


def test_particle_count_is_validated():
    from dreamer.guidance.vsd import VSDConfig

    for bad in (0, 17, 1.5, True):
        with pytest.raises(UserError, match="particles must be an integer from 1 to 16"):
            VSDConfig(particles=bad)
    with pytest.raises(UserError, match="at least 2 particles"):
        ParticleSet([Gaussians(GaussiansConfig(num_gaussians=10))])


@pytest.mark.parametrize("guidance", ["vsd", "esd"])
def test_generate_with_two_particles_trains_both_and_exports_each(tmp_path, tiny_run, guidance):
    import dreamer

    out = tmp_path / guidance
    result = dreamer.generate("a red cube", out=out, dotted=[*tiny_run, f"guidance.name={guidance}",
                                                              "guidance.particles=2"], **COMMON)
    state = torch.load(result.checkpoint, weights_only=True)
    keys = state["representation"].keys()
    assert any(k.startswith("members.0.") for k in keys) and any(k.startswith("members.1.") for k in keys)
    # both assets were exported, each a valid GLB, and evaluated
    for folder in (out, out / "particle_1"):
        assert (folder / "model.glb").is_file()
    assert result.exports["particle_1/glb"] == out / "particle_1" / "model.glb"
    evaluation = json.loads((out / "eval.json").read_text())
    assert len(evaluation["particles"]) == 2 and evaluation["particles"][0]["iou"] == evaluation["iou"]
    assert all("volume_iou" in p and len(p["extent_error"]) == 3 for p in evaluation["particles"])
    # the two particles were trained apart (different cameras, noise) from one initialisation
    a, b = (dict((k.split(".", 2)[2], v) for k, v in state["representation"].items() if k.startswith(f"members.{i}."))
            for i in (0, 1))
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    # the preview shows one row per particle
    from PIL import Image

    preview = Image.open(out / "previews" / "latest.png")
    assert preview.size == (4 * 16, 2 * 16)
    # resume continues both from the checkpoint (and exports both again; their evaluation was checked above,
    # so the resumed run does not repeat it: it is the most expensive part of the test)
    resumed = dreamer.generate(out=out, resume=True, steps=6, trainer__progress=False, export__video=False,
                               trainer__evaluate=False)
    assert resumed.metrics["resumed_from"] == 4 and resumed.metrics["steps"] == 6
    from gltf_validator import assert_valid_gltf

    assert_valid_gltf(out / "particle_1" / "model.glb")


def test_particle_members_of_a_single_representation_is_itself():
    g = Gaussians(GaussiansConfig(num_gaussians=10))
    assert particle_members(g) == [g]
