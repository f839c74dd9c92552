"""The analytic shape library: SDFs, colours, prompt parsing, ground-truth renders and meshes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from dreamer.cameras import from_spherical, turntable
from dreamer.errors import UserError
from dreamer.shapes import COLOURS, DEFAULT_COLOUR, OBJECTS, ObjectSpec, parse_prompt, render_spec, sdf_and_colour, spec_mesh
from dreamer.shapes.colours import ACCENTS
from dreamer.shapes.raytrace import AMBIENT, DIFFUSE, LIGHT_DIRECTION, TRACE_RADIUS

ALL = sorted(OBJECTS)
CORNERS = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=3)))


def _grid(n: int) -> torch.Tensor:
    axis = torch.linspace(-1, 1, n)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)


def _sphere_points(radius: float, n: int = 4000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return radius * torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)


# --------------------------------------------------------------------------- SDFs and colours


@pytest.mark.parametrize("name", ALL)
def test_object_sdf_is_inside_the_unit_cube_and_fits_a_small_sphere(name):
    spec = ObjectSpec(name, "red")
    grid = _grid(41)
    d, rgb = sdf_and_colour(spec, grid)
    assert d.shape == (len(grid),) and rgb.shape == (len(grid), 3)
    assert (d < 0).any(), "object has no inside"
    corners, _ = sdf_and_colour(spec, CORNERS)
    assert (corners > 0.2).all()
    assert grid[d < 0].norm(dim=-1).max() <= 0.75
    # Nothing outside radius 0.76 either (also keeps it inside the renderer's bounding sphere).
    assert (spec.object.sdf(_sphere_points(0.76)) > 0).all()
    assert 0.76 < TRACE_RADIUS
    assert rgb.min() >= 0 and rgb.max() <= 1


@pytest.mark.parametrize("name", ALL)
def test_sdf_never_overstates_distance(name):
    """|f(a) - f(b)| <= |a - b|: the condition under which sphere tracing cannot step through."""
    g = torch.Generator().manual_seed(1)
    a = torch.rand(3000, 3, generator=g) * 1.6 - 0.8
    b = a + 0.05 * torch.randn(3000, 3, generator=g)
    sdf = OBJECTS[name].sdf
    assert ((sdf(a) - sdf(b)).abs() <= (a - b).norm(dim=-1) + 1e-5).all()


def test_primitive_sdfs_are_exact_where_expected():
    p = torch.tensor([[0.0, 0.0, 0.9], [0.0, 0.0, 0.0], [0.6, 0.6, 0.6]])
    assert torch.allclose(OBJECTS["sphere"].sdf(p), torch.tensor([0.4, -0.5, math.sqrt(3) * 0.6 - 0.5]), atol=1e-6)
    assert torch.allclose(OBJECTS["cube"].sdf(p), torch.tensor([0.55, -0.35, math.sqrt(3) * 0.25]), atol=1e-6)


def test_primary_and_accent_colours():
    spec = ObjectSpec("mushroom", "red")
    cap_top = torch.tensor([[0.0, 0.42, 0.0]])
    stem_side = torch.tensor([[0.13, -0.2, 0.0]])
    _, rgb = sdf_and_colour(spec, torch.cat([cap_top, stem_side]))
    assert torch.allclose(rgb[0], torch.tensor(COLOURS["red"]))
    assert torch.allclose(rgb[1], torch.tensor(ACCENTS["offwhite"]))
    _, chair_rgb = sdf_and_colour(ObjectSpec("chair", "blue"), _grid(9))
    assert torch.allclose(chair_rgb, torch.tensor(COLOURS["blue"]).expand_as(chair_rgb))


def test_colour_table():
    for name in ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "white", "black", "gray"):
        rgb = COLOURS[name]
        assert len(rgb) == 3 and all(0 <= c <= 1 for c in rgb)
    assert max(COLOURS["black"]) < 0.15 and min(COLOURS["white"]) > 0.85


# --------------------------------------------------------------------------- prompts


@pytest.mark.parametrize(
    "prompt, shape, colour",
    [
        ("a red chair", "chair", "red"),
        ("red chair", "chair", "red"),
        ("A Red Chair.", "chair", "red"),
        ("an orange mushroom", "mushroom", "orange"),
        ("  a   blue\tcube!! ", "cube", "blue"),
        ("a chair, red", "chair", "red"),
        ("a grey house", "house", "gray"),
        ("the green snow man", "snowman", "green"),
        ("a purple ball", "sphere", "purple"),
    ],
)
def test_parse_prompt(prompt, shape, colour):
    assert parse_prompt(prompt) == ObjectSpec(shape, colour)


def test_prompt_without_colour_gets_the_default():
    assert parse_prompt("a mug") == ObjectSpec("mug", DEFAULT_COLOUR)
    assert DEFAULT_COLOUR == "gray"


@pytest.mark.parametrize(
    "prompt, fragment",
    [
        ("a purple dragon", "prompt 'a purple dragon' is outside the shape library (unknown word 'dragon')"),
        ("a teal chair", "unknown word 'teal'"),
        ("a red", "no shape named"),
        ("", "empty prompt"),
        ("  ...  ", "empty prompt"),
        ("a red chair and a blue table", "names 2 shapes (chair, table)"),
        ("a red blue chair", "names 2 colours (red, blue)"),
    ],
)
def test_parse_prompt_errors_name_the_problem_and_the_vocabulary(prompt, fragment):
    with pytest.raises(UserError) as info:
        parse_prompt(prompt)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert "known shapes are cube, sphere, cylinder, cone, torus, pyramid, capsule, snowman" in message
    assert "known colours are red, orange, yellow" in message


def test_object_spec_prompt_and_validation():
    assert ObjectSpec("chair", "red").prompt == "a red chair"
    assert ObjectSpec("mushroom", "orange").prompt == "an orange mushroom"
    assert ObjectSpec("cube", "grey") == ObjectSpec("cube", "gray")
    for spec in (ObjectSpec(s, c) for s in ALL for c in COLOURS):
        assert parse_prompt(spec.prompt) == spec
    with pytest.raises(UserError, match="unknown shape 'dragon'"):
        ObjectSpec("dragon", "red")
    with pytest.raises(UserError, match="unknown colour 'teal'"):
        ObjectSpec("cube", "teal")


# --------------------------------------------------------------------------- renders


def test_sphere_silhouette_matches_the_analytic_area():
    distance, fovy, size, radius = 2.8, 42.5, 96, 0.5
    cam = from_spherical(0.0, 0.0, distance, fovy, size)
    out = render_spec(ObjectSpec("sphere", "white"), cam, supersample=3)
    focal = 0.5 * size / math.tan(math.radians(fovy) / 2)
    disc_radius = focal * math.tan(math.asin(radius / distance))  # pixels
    expected = math.pi * disc_radius**2 / size**2
    assert out.alpha.mean().item() == pytest.approx(expected, rel=0.02)
    # Anti-aliasing leaves fractional coverage on the rim.
    assert ((out.alpha > 0.05) & (out.alpha < 0.95)).any()
    # Depth at the centre is the distance to the near pole (pixel centres sit half a pixel off axis).
    centre = out.depth[0, size // 2, size // 2, 0].item()
    assert centre == pytest.approx(distance - radius, abs=0.01)


def test_render_output_contract():
    cam = turntable(8, 64)
    out = render_spec(ObjectSpec("chair", "red"), cam, background=(0.2, 0.4, 0.6))
    assert out.rgb.shape == (8, 64, 64, 3) and out.alpha.shape == (8, 64, 64, 1) and out.depth.shape == (8, 64, 64, 1)
    assert out.rgb.min() >= 0 and out.rgb.max() <= 1
    assert set(out.alpha.unique().tolist()) <= {0.0, 1.0} and out.alpha.mean() > 0.05
    empty = out.alpha[..., 0] == 0
    assert (out.depth[..., 0][empty] == 0).all() and (out.depth[..., 0][~empty] > 1.5).all()
    assert torch.allclose(out.rgb[empty], torch.tensor([0.2, 0.4, 0.6]))
    assert out.extras["normal"].shape == (8, 64, 64, 3)


def test_red_cube_front_pixel_is_red():
    cam = from_spherical(0.0, 0.0, 2.8, 42.5, 64)
    out = render_spec(ObjectSpec("cube", "red"), cam)
    pixel = out.rgb[0, 32, 32]
    light = torch.nn.functional.normalize(torch.tensor(LIGHT_DIRECTION), dim=0)
    expected = torch.tensor(COLOURS["red"]) * (AMBIENT + DIFFUSE * (0.5 + 0.5 * light[2]))
    assert torch.allclose(pixel, expected, atol=0.01)
    assert pixel[0] > 0.6 and pixel[1] < 0.2 and pixel[2] < 0.2
    assert torch.allclose(out.extras["normal"][0, 32, 32], torch.tensor([0.0, 0.0, 1.0]), atol=0.01)


def _changed_fraction(a, b) -> float:
    """Share of pixels whose coverage, depth or albedo differ (lighting-independent)."""
    changed = (
        ((a.alpha - b.alpha).abs()[..., 0] > 0.5)
        | ((a.depth - b.depth).abs()[..., 0] > 0.02)
        | ((a.extras["albedo"] - b.extras["albedo"]).abs().amax(-1) > 0.1)
    )
    return changed.float().mean().item()


def test_front_and_back_differ_for_objects_with_a_front():
    front = from_spherical(0.0, 20.0, 2.8, 42.5, 64)
    back = from_spherical(180.0, 20.0, 2.8, 42.5, 64)
    for name in ("chair", "mug", "house"):
        spec = ObjectSpec(name, "red")
        assert _changed_fraction(render_spec(spec, front), render_spec(spec, back)) > 0.01, name
    # Control: a sphere looks the same from both sides (up to lighting).
    sphere = ObjectSpec("sphere", "red")
    assert _changed_fraction(render_spec(sphere, front), render_spec(sphere, back)) == 0.0


def test_front_features_face_plus_z():
    """The mug handle is on the image right (+X) in the front view, on the left from the back."""
    spec = ObjectSpec("mug", "red")
    for azimuth, handle_right in ((0.0, True), (180.0, False)):
        alpha = render_spec(spec, from_spherical(azimuth, 0.0, 2.8, 42.5, 64)).alpha[0, :, :, 0]
        cols = alpha.sum(0)
        right, left = cols[32:].nonzero().max().item(), 31 - cols[:32].nonzero().min().item()
        assert (right > left + 3) == handle_right


# --------------------------------------------------------------------------- meshes


@pytest.mark.parametrize(
    "name, lo, hi",
    [
        ("cube", (-0.35, -0.35, -0.35), (0.35, 0.35, 0.35)),
        ("sphere", (-0.5, -0.5, -0.5), (0.5, 0.5, 0.5)),
        ("cylinder", (-0.35, -0.42, -0.35), (0.35, 0.42, 0.35)),
        ("table", (-0.46, -0.40, -0.32), (0.46, 0.20, 0.32)),
    ],
)
def test_mesh_bounds_match_the_sdf_extents(name, lo, hi):
    mesh = spec_mesh(ObjectSpec(name, "green"), resolution=64)
    spacing = 2 / 63
    assert np.allclose(mesh.vertices.min(0), lo, atol=spacing)
    assert np.allclose(mesh.vertices.max(0), hi, atol=spacing)


@pytest.mark.parametrize("name", ALL)
def test_mesh_is_outward_coloured_and_on_the_surface(name):
    spec = ObjectSpec(name, "red")
    mesh = spec_mesh(spec, resolution=48)
    assert mesh.volume > 0  # outward-facing triangles
    d, _ = sdf_and_colour(spec, torch.from_numpy(mesh.vertices).float())
    assert d.abs().max() < 2 / 47
    colours = mesh.visual.vertex_colors
    assert colours.dtype == np.uint8 and colours.shape == (len(mesh.vertices), 4)
    red = np.round(np.array(COLOURS["red"]) * 255)
    assert (np.abs(colours[:, :3] - red).max(1) <= 1).any()
