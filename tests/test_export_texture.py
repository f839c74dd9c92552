"""The mesh export pipeline on a synthetic coloured sphere: valid glTF, textures that reproduce
the colour function, OBJ+MTL+PNG and PLY that reload, the face cap, bad options."""

import shutil

import numpy as np
import pytest
import trimesh
from gltf_validator import assert_valid_gltf

from dreamer.errors import UserError
from dreamer.export.options import MeshExportOptions
from dreamer.export.pipeline import export_mesh

SIZE = 256


def colour(points: np.ndarray) -> np.ndarray:
    """A smooth, non-linear colour field over space, in [0.1, 0.9]."""
    return 0.5 + 0.4 * np.sin(3.0 * np.asarray(points, dtype=np.float64))


def sphere(subdivisions: int = 4) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=subdivisions, radius=0.6)  # 5120 faces at 4


def sample_texture(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup at uv [N, 2] (origin bottom-left) of image [H, W, 3] uint8 (row 0 top), as
    a viewer does it."""
    h, w = image.shape[:2]
    x = np.clip(uv[:, 0] * w - 0.5, 0, w - 1)
    y = np.clip((1.0 - uv[:, 1]) * h - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    img = image.astype(np.float64) / 255.0
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def surface_samples(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n random points on `mesh` (textured) and their UVs: (points [n, 3], uv [n, 2])."""
    rng = np.random.default_rng(seed)
    face = rng.integers(0, len(mesh.faces), n)
    bary = rng.dirichlet(np.ones(3), n)
    corners = mesh.faces[face]
    points = np.einsum("nk,nkd->nd", bary, mesh.vertices[corners])
    uv = np.einsum("nk,nkd->nd", bary, mesh.visual.uv[corners])
    return points, uv


def texture_image(mesh: trimesh.Trimesh) -> np.ndarray:
    material = mesh.visual.material
    image = getattr(material, "baseColorTexture", None) or material.image
    return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    result = export_mesh(sphere(), colour, folder,
                         MeshExportOptions(formats=["obj", "ply"], max_faces=2000, texture_size=SIZE))
    return folder, result


def test_textured_glb_passes_the_khronos_validator(exported):
    folder, result = exported
    assert result.paths["glb"] == folder / "model.glb"
    report = assert_valid_gltf(folder / "model.glb")
    assert (report.warnings, report.infos, report.hints) == (0, 0, 0), report.messages  # not even a hint


def test_the_validator_check_catches_an_invalid_file(exported, tmp_path):
    folder, _ = exported
    data = (folder / "model.glb").read_bytes()
    assert data.count(b'"metallicFactor":0.0') == 1
    broken = tmp_path / "broken.glb"
    broken.write_bytes(data.replace(b'"metallicFactor":0.0', b'"metallicFactor":2.0'))  # same length
    with pytest.raises(AssertionError, match="VALUE_NOT_IN_RANGE"):
        assert_valid_gltf(broken)


def test_glb_reloads_with_its_texture_and_pbr_material(exported):
    folder, result = exported
    mesh = trimesh.load(folder / "model.glb", force="mesh")
    assert isinstance(mesh.visual, trimesh.visual.TextureVisuals)
    material = mesh.visual.material
    assert material.baseColorTexture.size == (SIZE, SIZE)
    assert material.metallicFactor == 0.0 and material.roughnessFactor == pytest.approx(1.0)
    assert material.doubleSided is False  # a closed sphere: back faces are never seen
    uv = mesh.visual.uv
    assert uv.shape == (len(mesh.vertices), 2) and uv.min() >= 0.0 and uv.max() <= 1.0
    assert len(mesh.faces) == result.faces <= 2000
    assert result.textured and result.charts >= 1 and 0.3 < result.coverage < 1.0


def test_baked_texture_reproduces_the_colour_function(exported):
    folder, _ = exported
    mesh = trimesh.load(folder / "model.glb", force="mesh")
    points, uv = surface_samples(mesh, 4000)
    error = np.abs(sample_texture(texture_image(mesh), uv) - colour(points))  # [N, 3]
    # texels are 3D-sampled at their centres: error grows only with the colour's change across a
    # texel (|∇| <= 1.2, texels ~0.01 wide here), plus 8-bit rounding
    assert np.median(error) < 0.003, np.median(error)
    assert np.quantile(error, 0.99) < 0.015, np.quantile(error, 0.99)


def test_seams_are_padded_so_no_background_bleeds_in(exported):
    folder, _ = exported
    mesh = trimesh.load(folder / "model.glb", force="mesh")
    image = texture_image(mesh)
    # no black (unbaked) texels anywhere: charts are dilated, the rest is their mean colour
    assert image.reshape(-1, 3).max(axis=1).min() > 10
    # bilinear lookups right at chart edges (triangle corners) still read chart colours
    # (with padding 0 the worst 1% of corners are off by ~0.3 here)
    corners = mesh.visual.uv[mesh.faces].reshape(-1, 2)
    points = mesh.vertices[mesh.faces].reshape(-1, 3)
    error = np.abs(sample_texture(image, corners) - colour(points))
    assert np.quantile(error, 0.99) < 0.02, np.quantile(error, 0.99)


def test_obj_mtl_png_reload_with_the_texture_from_another_folder(exported, tmp_path):
    folder, result = exported
    assert {"obj", "mtl", "texture"} <= set(result.paths)
    mtl = (folder / "model.mtl").read_text()
    assert "map_Kd model_albedo.png" in mtl.splitlines()  # relative name: the files move together
    assert "mtllib model.mtl" in (folder / "model.obj").read_text().splitlines()
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("model.obj", "model.mtl", "model_albedo.png"):
        shutil.copy(folder / name, moved / name)
    mesh = trimesh.load(moved / "model.obj", force="mesh")
    assert isinstance(mesh.visual, trimesh.visual.TextureVisuals)
    assert mesh.visual.material.image.size == (SIZE, SIZE)
    assert len(mesh.faces) == result.faces
    points, uv = surface_samples(mesh, 2000, seed=1)
    error = np.abs(sample_texture(texture_image(mesh), uv) - colour(points))
    assert np.median(error) < 0.003


def test_ply_has_vertex_colours_requeried_after_decimation(exported):
    folder, result = exported
    mesh = trimesh.load(folder / "model.ply", force="mesh")
    assert len(mesh.faces) == result.faces <= 2000
    rgb = mesh.visual.vertex_colors[:, :3] / 255.0
    assert np.abs(rgb - colour(mesh.vertices)).max() <= 1.0 / 255.0 + 1e-6


@pytest.mark.parametrize("max_faces", [150, 700])
def test_the_face_cap_is_honoured(max_faces, tmp_path):
    result = export_mesh(sphere(), colour, tmp_path, MeshExportOptions(max_faces=max_faces, texture_size=64))
    mesh = trimesh.load(tmp_path / "model.glb", force="mesh")
    assert result.faces_in == 5120 and len(mesh.faces) == result.faces <= max_faces
    assert result.faces > 0.8 * max_faces  # decimated to the cap, not far below it
    assert_valid_gltf(tmp_path / "model.glb")


def test_small_meshes_are_not_decimated(tmp_path):
    result = export_mesh(sphere(2), colour, tmp_path, MeshExportOptions(texture_size=64))
    assert result.faces == result.faces_in == 320


def test_without_a_colour_function_the_vertex_colours_are_baked(tmp_path):
    mesh = sphere(5)  # dense enough that vertex colours sample the field finely
    mesh.visual.vertex_colors = np.concatenate(
        [np.round(colour(mesh.vertices) * 255), np.full((len(mesh.vertices), 1), 255)], axis=1).astype(np.uint8)
    export_mesh(mesh, None, tmp_path, MeshExportOptions(max_faces=3000, texture_size=SIZE))
    assert_valid_gltf(tmp_path / "model.glb")
    out = trimesh.load(tmp_path / "model.glb", force="mesh")
    points, uv = surface_samples(out, 2000)
    error = np.abs(sample_texture(texture_image(out), uv) - colour(points))
    assert np.median(error) < 0.02, np.median(error)


def test_texture_off_writes_vertex_coloured_files(tmp_path):
    result = export_mesh(sphere(), colour, tmp_path,
                         MeshExportOptions(formats=["obj"], texture=False, max_faces=1000))
    assert not result.textured and set(result.paths) == {"glb", "obj"}
    assert not (tmp_path / "model.mtl").exists() and not (tmp_path / "model_albedo.png").exists()
    assert_valid_gltf(tmp_path / "model.glb")
    mesh = trimesh.load(tmp_path / "model.glb", force="mesh")
    assert mesh.visual.kind == "vertex" and len(mesh.faces) <= 1000
    rgb = mesh.visual.vertex_colors[:, :3] / 255.0
    assert np.abs(rgb - colour(mesh.vertices)).max() <= 1.0 / 255.0 + 1e-6


def test_a_mesh_without_any_colour_is_written_plain(tmp_path):
    result = export_mesh(sphere(2), None, tmp_path, MeshExportOptions(formats=["ply"]))
    assert not result.textured and (tmp_path / "model.glb").is_file() and (tmp_path / "model.ply").is_file()
    assert_valid_gltf(tmp_path / "model.glb")


def test_an_empty_mesh_is_a_user_error(tmp_path):
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(UserError, match="the mesh is empty"):
        export_mesh(empty, colour, tmp_path)


BAD_OPTIONS = [
    (dict(texture_size=1000), "texture size must be a power of two"),
    (dict(texture_size=8), "texture size must be a power of two"),
    (dict(texture_size=16384), "texture size must be a power of two"),
    (dict(max_faces=0), "max faces must be an integer of at least 100"),
    (dict(max_faces=2.5), "max faces must be an integer"),
    (dict(formats=["fbx"]), "unknown export format 'fbx'"),
    (dict(padding=-1), "texture padding must be an integer from 0 to 64"),
    (dict(texture="yes"), "texture must be true or false"),
]


@pytest.mark.parametrize("kwargs, message", BAD_OPTIONS)
def test_bad_options_are_one_line_user_errors(kwargs, message, tmp_path):
    with pytest.raises(UserError, match=message) as err:
        export_mesh(sphere(1), colour, tmp_path, MeshExportOptions(**kwargs))
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())  # nothing written
