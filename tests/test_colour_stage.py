"""The colour stage (`colour.share`): the run's last steps with the shape frozen, only the colour trained at the
stage's CFG and timesteps."""

import pytest
import torch

from dreamer.cameras import turntable
from dreamer.errors import UserError
from dreamer.guidance.sds import SDSConfig
from dreamer.run_config import ColourStageConfig, load_run_config


# ----------------------------------------------------------------------------- config


def test_the_stage_sets_the_rules_scale_and_timesteps_and_drops_the_anneal():
    base = SDSConfig(guidance_scale=5.0, t_min=0.02, t_max=0.98, t_anneal=0.5, uncond_debias=0.5)
    stage = ColourStageConfig(share=0.25, guidance_scale=1.5, t_min=0.3, t_max=0.7)
    assert (stage.steps_of(600), stage.steps_of(2), ColourStageConfig().steps_of(600)) == (150, 0, 0)
    rule = stage.guidance_config(base)
    assert (rule.guidance_scale, rule.t_min, rule.t_max, rule.t_anneal) == (1.5, 0.3, 0.7, None)
    assert rule.uncond_debias == 0.5 and base.guidance_scale == 5.0  # the rest kept; the run's rule untouched


@pytest.mark.parametrize("fields, message", [
    (dict(share=1.0), r"colour.share must lie in \[0, 1\)"),
    (dict(t_min=0.8, t_max=0.5), "colour needs 0 <= t_min <= t_max <= 1"),
    (dict(lr=0.0), "colour.guidance_scale must be >= 0 and colour.lr positive"),
])
def test_bad_stage_settings_fail_in_one_line(fields, message):
    with pytest.raises(UserError, match=message):
        ColourStageConfig(**fields)


@pytest.mark.parametrize("preset, dotted, message", [
    ("default", ["guidance=vsd", "prior=tiny"], "colour.share needs guidance sds; 'vsd'"),
    ("4d-oracle", [], "a 4D run has no colour stage"),
    ("default", ["steps=2", "colour.share=0.9"], "colour.share = 0.9 leaves no step of 2 to form the shape"),
])
def test_runs_the_stage_cannot_serve_are_refused(preset, dotted, message):
    cfg = load_run_config(preset, {"prompt": "a red cube"}, ["colour.share=0.5", *dotted])
    with pytest.raises(UserError, match=message):
        cfg.validate()


# ----------------------------------------------------------------------------- representations


def _nerf():
    from dreamer.representations.nerf import NeRF, NeRFConfig

    return NeRF(NeRFConfig(grid_resolution=16, num_samples=16, occupancy=False))


def _gaussians():
    from dreamer.representations.gaussians import Gaussians, GaussiansConfig

    return Gaussians(GaussiansConfig(num_gaussians=200))


def _mesh():
    from dreamer.representations.mesh import MeshConfig, MeshRepresentation

    return MeshRepresentation(MeshConfig(grid_resolution=8))


@pytest.mark.parametrize("make", [_nerf, _gaussians, _mesh], ids=["nerf", "gaussians", "mesh"])
def test_colour_steps_change_the_colour_and_leave_the_shape_as_it_was(make):
    torch.manual_seed(0)
    representation = make()
    cams = turntable(2, 16, 16, elevation=20.0)
    white = torch.ones(3)
    with torch.no_grad():
        before = representation.eval().render(cams, background=white)  # eval: no sample jitter
    representation.train()
    optimizer = torch.optim.Adam(representation.colour_parameter_groups(0.05))
    tunable = {id(p) for g in optimizer.param_groups for p in g["params"]}
    frozen = {name: p.detach().clone() for name, p in representation.named_parameters() if id(p) not in tunable}
    assert frozen, "some parameters must stay fixed"
    for _ in range(3):  # pull every pixel towards blue
        out = representation.render(cams, background=white)
        loss = (out.rgb - torch.tensor([0.0, 0.0, 1.0])).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = representation.eval().render(cams, background=white)
    for name, p in representation.named_parameters():
        if id(p) not in tunable:
            assert torch.equal(p, frozen[name]), name
    assert torch.allclose(after.alpha, before.alpha, atol=1e-6)  # the same shape ...
    inside = before.alpha[..., 0] > 0.5
    assert after.rgb[inside][:, 2].mean() > before.rgb[inside][:, 2].mean() + 0.01  # ... in another colour


def test_the_nerfs_density_row_never_moves():
    nerf = _nerf()
    head = nerf.mlp[-1]
    density_row, colour_rows = head.weight[0].detach().clone(), head.weight[1:].detach().clone()
    optimizer = torch.optim.Adam(nerf.colour_parameter_groups(0.05))
    out = nerf.render(turntable(1, 8, 8), background=torch.ones(3))
    (out.rgb.sum() + out.alpha.sum()).backward()  # a loss on opacity too: its gradient must not reach the row
    optimizer.step()
    assert torch.equal(head.weight[0], density_row) and float(head.bias.grad[0]) == 0.0
    assert not torch.equal(head.weight[1:], colour_rows)
    assert not any(p.requires_grad for p in nerf.encoding.parameters())


# ----------------------------------------------------------------------------- the trainer


def test_a_run_with_a_colour_stage_keeps_the_first_stages_shape_and_resumes_inside_the_stage(tmp_path, tiny_run):
    import json

    import dreamer
    from dreamer.errors import Interrupted

    common = dict(trainer__progress=False, export__video=False, trainer__evaluate=False)
    plain = dreamer.generate("a brown cone", out=tmp_path / "plain", dotted=[*tiny_run, "colour.share=0"], steps=3,
                             **common)
    # three steps of shape, as `plain`'s (the same draws, the rule's schedules over the same 3 steps), then 3 of colour
    coloured = dreamer.generate("a brown cone", out=tmp_path / "coloured", dotted=[*tiny_run, "colour.share=0.5"],
                                steps=6, **common)
    a = torch.load(plain.checkpoint, weights_only=True)
    b = torch.load(coloured.checkpoint, weights_only=True)
    assert (a["step"], a["stage"], b["step"], b["stage"]) == (3, "first", 6, "colour")
    head = "mlp.2.weight" if "mlp.2.weight" in b["representation"] else "mlp.0.weight"
    for key, value in a["representation"].items():
        if key.startswith("mlp."):
            assert torch.equal(value[:1], b["representation"][key][:1]), key  # the density row
        else:
            assert torch.equal(value, b["representation"][key]), key  # the grid, the occupancy grid
    assert not torch.equal(a["representation"][head][1:], b["representation"][head][1:])  # the colour rows moved
    steps = [json.loads(line)["step"] for line in (tmp_path / "coloured" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]

    def stop_at_5(event):
        if event.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="interrupted at step 5/6"):
        dreamer.generate("a brown cone", out=tmp_path / "cut", dotted=[*tiny_run, "colour.share=0.5"], steps=6,
                         on_progress=stop_at_5, **common)
    resumed = dreamer.generate(out=tmp_path / "cut", resume=True)
    assert resumed.metrics["resumed_from"] == 5
    c = torch.load(resumed.checkpoint, weights_only=True)["representation"]
    for key in b["representation"]:
        assert torch.allclose(b["representation"][key].float(), c[key].float(), atol=1e-6), key


def test_another_rule_drops_the_presets_colour_stage_unless_the_overrides_set_one(tmp_path):
    preset = tmp_path / "with-colour.yaml"
    preset.write_text("guidance:\n  name: sds\n  guidance_scale: 5.0\ncolour:\n  share: 0.25\n")
    assert load_run_config(str(preset)).colour.share == 0.25
    assert load_run_config(str(preset), dotted=["guidance=sds", "guidance.guidance_scale=7"]).colour.share == 0.25
    assert load_run_config(str(preset), dotted=["guidance=vsd"]).colour.share == 0.0
    kept = load_run_config(str(preset), {"prompt": "a red cube"}, ["guidance=vsd", "colour.share=0.5"])
    with pytest.raises(UserError, match="colour.share needs guidance sds"):
        kept.validate()
