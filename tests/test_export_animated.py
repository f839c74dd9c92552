"""4D exports: the animated GLB (morph targets, node TRS), the splat sequence, the motion videos,
and the whole export of an `Animated` representation (a fake: tiny Gaussians sliding in x)."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch
import trimesh

from gltf_validator import assert_valid_gltf

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.export.animated_gltf import decompose_similarity, write_animated_glb, write_trs_glb
from dreamer.export.four_d_video import motion_frames, turntable_motion_cameras, turntable_motion_frames
from dreamer.export.splat_sequence import read_deformation, write_splat_sequence
from dreamer.render.splat.ply import read_splats_ply
from dreamer.representations.base import Animated
from dreamer.representations.gaussians import Gaussians, GaussiansConfig
from dreamer.run_config import RunConfig
from dreamer.trainer.four_d_outputs import export_motion_outputs, motion_settings

COMPONENTS = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}
WIDTHS = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}


def read_glb(path) -> tuple[dict, callable]:
    """(the JSON tree, accessor index -> numpy array) of a GLB, parsed by hand."""
    raw = path.read_bytes()
    magic, version, total = struct.unpack_from("<4sII", raw, 0)
    assert (magic, version, total) == (b"glTF", 2, len(raw))
    json_len, kind = struct.unpack_from("<I4s", raw, 12)
    assert kind == b"JSON"
    tree = json.loads(raw[20:20 + json_len])
    bin_len, kind = struct.unpack_from("<I4s", raw, 20 + json_len)
    assert kind == b"BIN\0"
    blob = raw[28 + json_len:28 + json_len + bin_len]

    def accessor(index: int) -> np.ndarray:
        a = tree["accessors"][index]
        view = tree["bufferViews"][a["bufferView"]]
        width = WIDTHS[a["type"]]
        data = np.frombuffer(blob, COMPONENTS[a["componentType"]], a["count"] * width, view["byteOffset"])
        return data.reshape(a["count"], width) if width > 1 else data

    return tree, accessor


def coloured_sphere() -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
    mesh.visual.vertex_colors = np.tile([200, 40, 30, 255], (len(mesh.vertices), 1)).astype(np.uint8)
    return mesh


def sliding_frames(mesh: trimesh.Trimesh, count: int) -> np.ndarray:
    """[T, V, 3]: the mesh slid by 0.3·sin(2πk/T) in x and squashed a little in y."""
    v = np.asarray(mesh.vertices)
    return np.stack([v * [1, 1 - 0.2 * k / count, 1] + [0.3 * math.sin(2 * math.pi * k / count), 0, 0]
                     for k in range(count)])


# ------------------------------------------------------------------ morph-target GLB
def test_morph_glb_is_valid_and_reproduces_every_frame(tmp_path):
    mesh, count, fps = coloured_sphere(), 5, 8.0
    frames = sliding_frames(mesh, count)
    path = write_animated_glb(mesh, frames, tmp_path / "model.glb", fps)
    report = assert_valid_gltf(path)
    assert (report.warnings, report.infos, report.hints) == (0, 0, 0), report.messages

    tree, accessor = read_glb(path)
    primitive = tree["meshes"][0]["primitives"][0]
    base = accessor(primitive["attributes"]["POSITION"]).astype(np.float64)
    assert len(primitive["targets"]) == count and tree["meshes"][0]["weights"] == [0.0] * count
    assert accessor(primitive["attributes"]["COLOR_0"])[0].tolist() == [200, 40, 30, 255]
    sampler = tree["animations"][0]["samplers"][0]
    assert tree["animations"][0]["channels"][0]["target"] == {"node": 0, "path": "weights"}
    assert sampler["interpolation"] == "LINEAR"
    times = accessor(sampler["input"])
    np.testing.assert_allclose(times, np.arange(count + 1) / fps, rtol=1e-6)
    weights = accessor(sampler["output"]).reshape(count + 1, count)
    np.testing.assert_array_equal(weights[:count], np.eye(count))
    np.testing.assert_array_equal(weights[-1], weights[0])  # the loop key
    for k, target in enumerate(primitive["targets"]):
        delta = accessor(target["POSITION"])
        a = tree["accessors"][target["POSITION"]]
        assert a["min"] == delta.min(axis=0).tolist() and a["max"] == delta.max(axis=0).tolist()
        moved = base + (weights[k][:, None, None] * np.stack([accessor(t["POSITION"]) for t in primitive["targets"]])).sum(0)
        np.testing.assert_allclose(moved, frames[k], atol=1e-6)
    # trimesh (another reader) opens it and finds the canonical surface
    scene = trimesh.load(path)
    loaded = next(iter(scene.geometry.values()))
    np.testing.assert_allclose(np.asarray(loaded.vertices), mesh.vertices, atol=1e-6)


def test_morph_glb_checks_its_inputs(tmp_path):
    mesh = coloured_sphere()
    with pytest.raises(UserError, match=r"animation frames must be \[T, 42, 3\]"):
        write_animated_glb(mesh, np.zeros((3, 5, 3)), tmp_path / "a.glb", 8)
    with pytest.raises(UserError, match="frame rate must be a positive number"):
        write_animated_glb(mesh, sliding_frames(mesh, 2), tmp_path / "a.glb", 0)
    with pytest.raises(UserError, match="NaN"):
        write_animated_glb(mesh, np.full((2, 42, 3), np.nan), tmp_path / "a.glb", 8)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ TRS GLB
def similarity(angle: float, shift: float, scale: float) -> np.ndarray:
    m = trimesh.transformations.rotation_matrix(angle, [0.0, 1.0, 0.0])
    m[:3, :3] *= scale
    m[:3, 3] = [shift, 0.5 * shift, 0.0]
    return m


def trs_matrix(t, q, s) -> np.ndarray:
    x, y, z, w = q
    m = trimesh.transformations.quaternion_matrix([w, x, y, z])  # trimesh: w first
    m[:3, :3] = m[:3, :3] * s
    m[:3, 3] = t
    return m


def test_trs_glb_is_valid_and_reproduces_every_matrix(tmp_path):
    count, fps = 6, 12.0
    matrices = np.stack([similarity(2 * math.pi * k / count, 0.2 * math.sin(2 * math.pi * k / count), 1 + 0.1 * k)
                         for k in range(count)])
    path = write_trs_glb(coloured_sphere(), matrices, tmp_path / "model_trs.glb", fps)
    report = assert_valid_gltf(path)
    assert (report.warnings, report.infos, report.hints) == (0, 0, 0), report.messages

    tree, accessor = read_glb(path)
    animation = tree["animations"][0]
    paths = {c["target"]["path"]: animation["samplers"][c["sampler"]] for c in animation["channels"]}
    assert sorted(paths) == ["rotation", "scale", "translation"]
    keys = {name: accessor(s["output"]) for name, s in paths.items()}
    np.testing.assert_allclose(accessor(paths["rotation"]["input"]), np.arange(count + 1) / fps, rtol=1e-6)
    for name, values in keys.items():
        assert len(values) == count + 1
        same = values[0] if name != "rotation" else np.sign(np.dot(values[-1], values[0])) * values[0]
        np.testing.assert_array_equal(values[-1], same)  # the loop key: the first pose again (q and −q are one turn)
    rotation = keys["rotation"]
    assert all(np.dot(rotation[k], rotation[k + 1]) > 0 for k in range(count))  # slerp goes forward, loop key too
    for k in range(count):
        rebuilt = trs_matrix(keys["translation"][k], keys["rotation"][k], keys["scale"][k])
        np.testing.assert_allclose(rebuilt, matrices[k], atol=1e-5)
    node = tree["nodes"][0]
    np.testing.assert_allclose(trs_matrix(node["translation"], node["rotation"], node["scale"]), matrices[0], atol=1e-6)


def test_trs_refuses_shear_and_bad_shapes(tmp_path):
    shear = np.eye(4)
    shear[0, 1] = 0.5
    with pytest.raises(UserError, match="not translation·rotation·scale"):
        decompose_similarity(shear)
    with pytest.raises(UserError, match=r"motion matrices must be \[T, 4, 4\]"):
        write_trs_glb(coloured_sphere(), np.eye(4), tmp_path / "a.glb", 8)
    mirror = np.diag([-1.0, 2.0, 2.0, 1.0])  # a reflection goes into a negative scale
    t, q, s = decompose_similarity(mirror)
    np.testing.assert_allclose(trs_matrix(t, q, s), mirror, atol=1e-12)


# ------------------------------------------------------------------ the fake 4D representation
class SlidingGaussians(Gaussians):
    """Tiny Gaussians moved by the analytic motion x += amplitude·sin(2πt): an `Animated` stand-in."""

    is_dynamic = True

    def __init__(self, amplitude: float = 0.3):
        super().__init__(GaussiansConfig(init="shape", init_shape="a red cube", num_gaussians=300, densify=False,
                                         init_opacity=0.8))
        self.amplitude = amplitude

    def offset(self, times: torch.Tensor) -> torch.Tensor:  # [B] -> [B, 3]
        out = torch.zeros(len(times), 3, device=times.device)
        out[:, 0] = self.amplitude * torch.sin(2 * math.pi * times)
        return out

    def deform_points(self, points: torch.Tensor, time: float) -> torch.Tensor:
        return points + self.offset(torch.tensor([float(time)], device=points.device))

    def render(self, camera: Camera, background=None, generator=None):
        c2w = camera.c2w.clone()  # moving the object by d = moving the camera by -d
        c2w[:, :3, 3] -= self.offset(camera.times.to(c2w.device))
        return super().render(Camera(c2w, camera.fovy, camera.width, camera.height), background, generator)

    def splat_arrays_at(self, time: float):
        splats = self.splat_arrays()
        splats.means = splats.means + self.offset(torch.tensor([float(time)]))[0].numpy()
        return splats

    def deformation_state(self) -> dict[str, torch.Tensor]:
        return {"amplitude": torch.tensor([self.amplitude]), "planes.xt": torch.arange(8.0).reshape(2, 4)}

    def set_stage(self, stage: str) -> None:
        pass


@pytest.fixture(scope="module")
def sliding():
    torch.manual_seed(0)
    return SlidingGaussians().eval()


def tiny_config(export_frames: int = 4, fps: float = 8.0) -> RunConfig:
    config = RunConfig()
    config.export.mesh_resolution, config.export.max_faces = 32, 400
    config.export.video_frames, config.export.video_resolution, config.export.fps = 6, 32, 8
    config.motion.export_frames, config.motion.fps = export_frames, fps
    return config


# ------------------------------------------------------------------ splat sequence
def test_splat_sequence_round_trips(tmp_path, sliding):
    frames = [sliding.splat_arrays_at(k / 3) for k in range(3)]
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "frame_007.ply").write_bytes(b"left over")
    paths = write_splat_sequence(sliding.splat_arrays(), frames, sliding.deformation_state(), tmp_path,
                                 metadata={"kind": "sine"})
    assert sorted(p.name for p in paths["frames"].iterdir()) == ["frame_000.ply", "frame_001.ply", "frame_002.ply"]
    canonical = read_splats_ply(paths["splats"])
    np.testing.assert_array_equal(canonical.means, sliding.splat_arrays().means)
    for k in range(3):
        frame = read_splats_ply(paths["frames"] / f"frame_{k:03d}.ply")
        np.testing.assert_allclose(frame.means - canonical.means, [[0.3 * math.sin(2 * math.pi * k / 3), 0, 0]] * len(frame),
                                   atol=1e-6)
        np.testing.assert_array_equal(frame.quats, canonical.quats)
    tensors, meta = read_deformation(paths["deformation"])
    assert torch.equal(tensors["planes.xt"], torch.arange(8.0).reshape(2, 4))
    assert (meta["format"], meta["frames"], meta["kind"]) == ("dreamer-deformation/1", "3", "sine")
    assert json.loads(meta["tensors"]) == {"amplitude": [1], "planes.xt": [2, 4]}
    with pytest.raises(UserError, match="at least one frame"):
        write_splat_sequence(sliding.splat_arrays(), [], {}, tmp_path)


# ------------------------------------------------------------------ videos
def test_motion_video_moves_only_when_the_representation_does(sliding):
    moving = motion_frames(sliding, 4, 32, torch.device("cpu"))
    assert moving.shape == (4, 32, 32, 3) and moving.dtype == np.uint8
    assert np.abs(moving[1].astype(int) - moving[0]).max() > 50  # x slid by 0.3 at t = 1/4
    still = SlidingGaussians(amplitude=0.0).eval()
    frozen = motion_frames(still, 4, 32, torch.device("cpu"))
    assert all(np.array_equal(frozen[0], f) for f in frozen[1:])
    orbit = turntable_motion_frames(still, 4, 32, torch.device("cpu"))
    assert not np.array_equal(orbit[0], orbit[1])  # the camera moves even when the object does not


def test_turntable_cameras_orbit_once_while_the_motion_loops():
    cams = turntable_motion_cameras(8, 16, loops=3)
    np.testing.assert_allclose(cams.azimuth.numpy(), np.arange(8) * 45.0, atol=1e-3)
    np.testing.assert_allclose(cams.times.numpy(), (3 * np.arange(8) / 8) % 1.0, atol=1e-6)
    with pytest.raises(UserError, match="motion loops per turn must be a positive integer"):
        turntable_motion_cameras(8, 16, loops=0)


# ------------------------------------------------------------------ the whole 4D export
def test_export_motion_outputs_writes_every_file_atomically(tmp_path, sliding, monkeypatch):
    import dreamer.io

    replaced = []
    real_replace = dreamer.io.os.replace
    monkeypatch.setattr(dreamer.io.os, "replace", lambda src, dst: (replaced.append(str(dst)), real_replace(src, dst)))
    assert isinstance(sliding, Animated)
    config = tiny_config(export_frames=4, fps=8.0)
    rigid = np.stack([similarity(2 * math.pi * k / 4, 0.1, 1.0) for k in range(4)])
    paths = export_motion_outputs(config, sliding, tmp_path, formats=["ply"], video=True, rigid=rigid)
    assert set(paths) == {"glb", "glb_trs", "ply", "splats", "deformation", "frames", "motion_video", "video"}
    assert [p.name for p in sorted(paths["frames"].iterdir())] == [f"frame_{k:03d}.ply" for k in range(4)]
    for name in ("glb", "glb_trs"):
        assert_valid_gltf(paths[name])
    tree, accessor = read_glb(paths["glb"])
    assert len(tree["meshes"][0]["primitives"][0]["targets"]) == 4
    assert len(accessor(tree["animations"][0]["samplers"][0]["input"])) == 5
    assert tree["accessors"][tree["meshes"][0]["primitives"][0]["indices"]]["count"] <= 3 * 400
    # target 1 is the canonical surface slid by 0.3·sin(π/2) in x
    delta = accessor(tree["meshes"][0]["primitives"][0]["targets"][1]["POSITION"])
    np.testing.assert_allclose(delta, [[0.3, 0.0, 0.0]] * len(delta), atol=1e-6)
    assert paths["motion_video"].name in ("motion.mp4", "motion.gif") and paths["video"].stem == "turntable"
    written = {str(p) for p in tmp_path.rglob("*") if p.is_file()}
    assert written == set(replaced)  # each file was moved into place by one rename
    assert not any(p.name.startswith(".") for p in tmp_path.rglob("*"))  # no temporary file left


def test_export_motion_outputs_refuses_a_static_representation(tmp_path):
    static = Gaussians(GaussiansConfig(init="shape", init_shape="a red cube", num_gaussians=50, densify=False))
    with pytest.raises(UserError, match="Gaussians has no motion: use the static export"):
        export_motion_outputs(tiny_config(), static, tmp_path)


def test_motion_settings_default_and_checks():
    assert motion_settings(RunConfig()) == (16, 8.0)  # MotionConfig's defaults
    assert motion_settings(tiny_config(export_frames=5, fps=12)) == (5, 12.0)
    with pytest.raises(UserError, match="motion.export_frames must be >= 2 and motion.fps >= 1"):
        motion_settings(tiny_config(export_frames=0))
    with pytest.raises(UserError, match="motion.export_frames must be >= 2 and motion.fps >= 1"):
        motion_settings(tiny_config(fps=-1.0))
