"""The pure-PyTorch mesh rasterizer against brute-force references: coverage, depth order,
perspective-correct barycentrics, finite-difference gradients, and pixel alignment with the rays
of `dreamer.render.rays`."""

import itertools

import pytest
import torch

from dreamer.cameras import Camera, from_spherical
import dreamer.render.mesh as mesh_raster
from dreamer.render.mesh import Fragments, antialias, interpolate, rasterize
from dreamer.render.rays import camera_rays


def front_camera(size: int = 24, dtype=torch.float64, distance: float = 3.0) -> Camera:
    cam = from_spherical(0.0, 0.0, distance, 40.0, size, size)  # on +Z looking at the origin
    return Camera(cam.c2w.to(dtype), cam.fovy.to(dtype), size, size)


def brute_force_cover(vertices: torch.Tensor, camera: Camera) -> torch.Tensor:
    """[H, W] bool: pixel centres strictly inside the projection of one triangle (camera 0), by a
    per-pixel loop over 2D sign tests on points projected with the intrinsics matrix."""
    w2c = torch.linalg.inv(camera.c2w[0])
    cam = (w2c[:3, :3] @ vertices.T).T + w2c[:3, 3]  # OpenGL frame: looks along −Z, +Y up
    K = camera.intrinsics[0]
    # OpenGL → image: u = f x / (−z) + cx, v = −f y / (−z) + cy (row 0 at the top).
    u = K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2]
    v = -K[1, 1] * cam[:, 1] / -cam[:, 2] + K[1, 2]
    pts = [(float(a), float(b)) for a, b in zip(u, v)]
    out = torch.zeros(camera.height, camera.width, dtype=torch.bool)
    for row, col in itertools.product(range(camera.height), range(camera.width)):
        p = (col + 0.5, row + 0.5)
        signs = []
        for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):
            signs.append((bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax))
        out[row, col] = all(s > 0 for s in signs) or all(s < 0 for s in signs)
    return out


# A triangle tilted away from the camera (its vertices at different depths), so that screen-space
# and perspective-correct barycentrics differ.
TILTED = torch.tensor([[-0.8, -0.6, 0.5], [0.9, -0.4, -0.6], [0.1, 0.8, 0.1]], dtype=torch.float64)


def ray_hits(camera: Camera, fragments: Fragments, vertices: torch.Tensor, faces: torch.Tensor):
    """(hit points from the barycentrics, the rays.py ray hits on the same triangle planes)."""
    origins, dirs = camera_rays(camera)
    cov = fragments.triangle_id >= 0
    tri = vertices[faces[fragments.triangle_id[cov]]]  # [N, 3, 3]
    from_bary = (fragments.bary[cov][..., None] * tri).sum(-2)
    normal = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    o, d = origins[cov], dirs[cov]
    t = ((tri[:, 0] - o) * normal).sum(-1) / (d * normal).sum(-1)
    return from_bary, o + t[:, None] * d, t, d


@pytest.mark.parametrize("winding", [[0, 1, 2], [0, 2, 1]])
def test_single_triangle_coverage_bary_and_depth(winding):
    camera = front_camera(24)
    faces = torch.tensor([winding])
    frags = rasterize(TILTED, faces, camera)
    expected = brute_force_cover(TILTED, camera)
    assert 60 < expected.sum() < 24 * 24 - 60  # a real test: some pixels in, some out
    assert torch.equal(frags.triangle_id[0] >= 0, expected)  # both windings render (no culling)
    assert torch.equal(frags.triangle_id[0][expected], torch.zeros(int(expected.sum()), dtype=torch.long))
    assert torch.equal(frags.mask[0, ..., 0], expected.double())

    cov = frags.triangle_id >= 0
    bary = frags.bary[cov]
    torch.testing.assert_close(bary.sum(-1), torch.ones(len(bary), dtype=torch.float64))
    assert (bary >= -1e-12).all()
    from_bary, hit, t, d = ray_hits(camera, frags, TILTED, faces)
    torch.testing.assert_close(from_bary, hit, atol=1e-10, rtol=0)
    forward = -camera.c2w[0, :3, 2]  # the camera looks along its −Z
    torch.testing.assert_close(frags.depth[cov][:, 0], t * (d @ forward), atol=1e-10, rtol=0)
    assert (frags.bary[~cov] == 0).all() and (frags.depth[~cov] == 0).all()

    # Screen-space (affine) barycentrics would be wrong here: the test can tell them apart.
    affine_hit_err = _affine_bary_error(camera, frags, TILTED, faces)
    assert affine_hit_err > 1e-3


def _affine_bary_error(camera, frags, vertices, faces) -> float:
    """Max distance between the ray hit and the point given by screen-space barycentrics."""
    w2c = torch.linalg.inv(camera.c2w[0])
    cam = (w2c[:3, :3] @ vertices.T).T + w2c[:3, 3]
    f = camera.focal[0]
    uv = torch.stack([f * cam[:, 0] / -cam[:, 2] + 12, -f * cam[:, 1] / -cam[:, 2] + 12], -1)
    cov = frags.triangle_id[0] >= 0
    rows, cols = cov.nonzero().unbind(1)
    p = torch.stack([cols + 0.5, rows + 0.5], -1).double()
    a, b, c = uv[faces[0]]
    area = (b - a)[0] * (c - a)[1] - (b - a)[1] * (c - a)[0]
    l1 = ((p - a)[:, 0] * (c - a)[1] - (p - a)[:, 1] * (c - a)[0]) / area
    l2 = ((b - a)[0] * (p - a)[:, 1] - (b - a)[1] * (p - a)[:, 0]) / area
    affine = torch.stack([1 - l1 - l2, l1, l2], -1)
    _, hit, _, _ = ray_hits(camera, frags, vertices, faces)
    return float(((affine[..., None] * vertices[faces[0]]).sum(-2) - hit).norm(dim=-1).max())


def test_nearer_triangle_wins_regardless_of_order():
    near_tri = torch.tensor([[-0.7, -0.5, 0.3], [0.5, -0.6, 0.3], [0.0, 0.6, 0.3]])
    far_tri = torch.tensor([[-0.2, -0.8, -0.4], [0.9, -0.3, -0.4], [0.2, 0.9, -0.4]])
    camera = front_camera(32, torch.float32)
    vertices = torch.cat([near_tri, far_tri])
    only_near = rasterize(near_tri, torch.tensor([[0, 1, 2]]), camera).triangle_id[0] >= 0
    only_far = rasterize(far_tri, torch.tensor([[0, 1, 2]]), camera).triangle_id[0] >= 0
    assert (only_near & only_far).sum() > 50 and (only_far & ~only_near).sum() > 20
    for order in ([[0, 1, 2], [3, 4, 5]], [[3, 4, 5], [0, 1, 2]]):
        faces = torch.tensor(order)
        near_id = order.index([0, 1, 2])
        frags = rasterize(vertices, faces, camera)
        ids = frags.triangle_id[0]
        assert (ids[only_near] == near_id).all()
        assert (ids[only_far & ~only_near] == 1 - near_id).all()
        assert (ids[~only_near & ~only_far] == -1).all()
        depth = frags.depth[0, ..., 0]
        torch.testing.assert_close(depth[only_near], torch.full_like(depth[only_near], 2.7))
        torch.testing.assert_close(depth[only_far & ~only_near], torch.full_like(depth[only_far & ~only_near], 3.4))


def tetrahedron() -> tuple[torch.Tensor, torch.Tensor]:
    vertices = torch.tensor([[0.0, 0.7, 0.1], [-0.6, -0.4, 0.4], [0.65, -0.35, 0.3], [0.05, -0.3, -0.6]],
                            dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    return vertices, faces


def gradient_check(loss_fn, vertices, attributes, camera, faces, eps=1e-6):
    """Autograd vs central finite differences of loss_fn(fragments, attributes) in float64,
    asserting that no pixel changes triangle under any perturbation."""
    v = vertices.clone().requires_grad_()
    a = attributes.clone().requires_grad_()
    frags = rasterize(v, faces, camera)
    ids = frags.triangle_id
    loss_fn(frags, a).backward()

    def loss_at(vv, aa):
        fr = rasterize(vv, faces, camera)
        assert torch.equal(fr.triangle_id, ids)
        return float(loss_fn(fr, aa))

    for tensor, grad, is_vertex in ((vertices, v.grad, True), (attributes, a.grad, False)):
        numeric = torch.zeros_like(tensor)
        for idx in itertools.product(*map(range, tensor.shape)):
            plus, minus = tensor.clone(), tensor.clone()
            plus[idx] += eps
            minus[idx] -= eps
            args = ((plus, attributes), (minus, attributes)) if is_vertex else ((vertices, plus), (vertices, minus))
            numeric[idx] = (loss_at(*args[0]) - loss_at(*args[1])) / (2 * eps)
        assert numeric.abs().max() > 1e-3  # the loss really depends on it
        rel = (grad - numeric).norm() / numeric.norm()
        assert rel <= 1e-4, (rel, grad, numeric)
    return frags


@pytest.mark.parametrize("azimuth, elevation", [(60.0, -30.0), (200.0, 25.0)])
def test_interpolate_gradients_match_finite_differences(azimuth, elevation):
    vertices, faces = tetrahedron()
    cam = from_spherical(azimuth, elevation, 2.0, 45.0, 20, 18)
    camera = Camera(cam.c2w.double(), cam.fovy.double(), 20, 18)
    attributes = torch.stack([vertices[:, 0] ** 2 + 0.3, torch.sin(2 * vertices[:, 1]), vertices.sum(-1)], -1)
    w = torch.randn(1, 18, 20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def loss(frags, attrs):
        return (w * interpolate(attrs, faces, frags)).sum()

    frags = gradient_check(loss, vertices, attributes, camera, faces)
    assert len(frags.triangle_id.unique()) >= 3  # several faces and background in view


def test_depth_gradients_match_finite_differences():
    vertices, faces = tetrahedron()
    cam = from_spherical(300.0, -30.0, 2.0, 45.0, 20, 20)
    camera = Camera(cam.c2w.double(), cam.fovy.double(), 20, 20)
    w = torch.randn(1, 20, 20, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    v = vertices.clone().requires_grad_()
    frags = rasterize(v, faces, camera)
    (w * frags.depth).sum().backward()
    eps, numeric = 1e-6, torch.zeros_like(vertices)
    for idx in itertools.product(range(4), range(3)):
        vals = []
        for sign in (1, -1):
            p = vertices.clone()
            p[idx] += sign * eps
            fr = rasterize(p, faces, camera)
            assert torch.equal(fr.triangle_id, frags.triangle_id)
            vals.append(float((w * fr.depth).sum()))
        numeric[idx] = (vals[0] - vals[1]) / (2 * eps)
    assert len(frags.triangle_id.unique()) >= 4  # three faces and background
    assert numeric.abs().max() > 1e-2
    assert (v.grad - numeric).norm() / numeric.norm() <= 1e-4


def box_mesh(lo, hi) -> tuple[torch.Tensor, torch.Tensor]:
    """The 12 triangles of an axis-aligned box (mixed winding: the rasterizer must not care)."""
    corners = torch.tensor(list(itertools.product((0, 1), repeat=3)), dtype=torch.float32)
    vertices = torch.tensor(lo) + corners * (torch.tensor(hi) - torch.tensor(lo))
    faces = []
    for axis in range(3):
        for side in (0, 1):
            quad = [i for i, c in enumerate(corners.tolist()) if c[axis] == side]  # 4 corners
            a, b, c, d = quad  # ordered so (a, d) is a diagonal
            faces += [[a, b, d], [a, c, d]]
    return vertices, torch.tensor(faces)


def ray_box_mask(camera: Camera, lo, hi) -> torch.Tensor:
    """[B, H, W] bool: rays.py pixel-centre rays that hit the box (slab test)."""
    origins, dirs = camera_rays(camera)
    lo, hi = torch.tensor(lo), torch.tensor(hi)
    inv = 1.0 / dirs
    t0, t1 = (lo - origins) * inv, (hi - origins) * inv
    t_near = torch.minimum(t0, t1).amax(-1)
    t_far = torch.maximum(t0, t1).amin(-1)
    return (t_far >= t_near) & (t_far > 0)


def test_silhouette_aligns_with_rays():
    lo, hi = [-0.3, -0.45, -0.2], [0.55, 0.35, 0.4]  # off-centre and not symmetric
    vertices, faces = box_mesh(lo, hi)
    camera = from_spherical(torch.tensor([30.0, 160.0]), torch.tensor([25.0, -15.0]), 2.6, 45.0, 64, 64)
    mesh = rasterize(vertices, faces, camera).triangle_id >= 0
    rays = ray_box_mask(camera, lo, hi)
    for b in range(2):
        inter = (mesh[b] & rays[b]).sum()
        union = (mesh[b] | rays[b]).sum()
        assert inter / union >= 0.98
        assert (mesh[b] ^ rays[b]).sum() <= 2  # equal up to pixel centres on an edge
        # A half-pixel shift or a flipped row order would fail by far:
        assert (mesh[b].roll(1, 0) ^ rays[b]).sum() > 20
        assert (mesh[b].flip(0) ^ rays[b]).sum() > 20


def test_depth_matches_ray_distance_on_box():
    lo, hi = [-0.3, -0.45, -0.2], [0.55, 0.35, 0.4]
    vertices, faces = box_mesh(lo, hi)
    camera = from_spherical(50.0, 30.0, 2.6, 45.0, 32, 32)
    frags = rasterize(vertices, faces, camera)
    origins, dirs = camera_rays(camera)
    lo_t, hi_t = torch.tensor(lo), torch.tensor(hi)
    t0, t1 = (lo_t - origins) / dirs, (hi_t - origins) / dirs
    t_near = torch.minimum(t0, t1).amax(-1)  # distance to the first box surface along the ray
    cov = frags.triangle_id >= 0
    forward = -camera.c2w[0, :3, 2]
    torch.testing.assert_close(frags.depth[cov][:, 0], (t_near[..., None] * dirs)[cov] @ forward,
                               atol=1e-4, rtol=0)


def test_mesh_behind_camera_renders_empty():
    vertices, faces = tetrahedron()
    vertices = (vertices + torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64)).requires_grad_()
    camera = front_camera(16)  # at z = 3 looking towards −Z: the mesh is behind it
    frags = rasterize(vertices, faces, camera)
    assert (frags.triangle_id == -1).all() and (frags.mask == 0).all()
    assert (frags.bary == 0).all() and (frags.depth == 0).all()
    attrs = torch.rand(4, 3, dtype=torch.float64, requires_grad=True)
    out = interpolate(attrs, faces, frags)
    assert (out == 0).all() and out.shape == (1, 16, 16, 3)
    (out.sum() + frags.depth.sum()).backward()
    assert torch.isfinite(vertices.grad).all() and (vertices.grad == 0).all()
    assert (attrs.grad == 0).all()


def test_triangle_through_near_plane_is_culled_not_nan():
    camera = front_camera(16)
    vertices = torch.tensor([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.0, 0.3, 2.99]], dtype=torch.float64)
    frags = rasterize(vertices, torch.tensor([[0, 1, 2]]), camera, near=0.05)
    assert (frags.triangle_id == -1).all()
    assert torch.isfinite(frags.bary).all()


def test_batch_equals_single_renders():
    vertices, faces = tetrahedron()
    attrs = torch.rand(2, 4, 2, dtype=torch.float64)
    cam = from_spherical(torch.tensor([15.0, 250.0]), torch.tensor([20.0, -30.0]),
                         torch.tensor([1.8, 2.2]), torch.tensor([40.0, 55.0]), 22, 17)
    camera = Camera(cam.c2w.double(), cam.fovy.double(), 22, 17)
    both = rasterize(vertices, faces, camera)
    both_shared = interpolate(attrs[0], faces, both)
    both_per_camera = interpolate(attrs, faces, both)
    for b in range(2):
        one = rasterize(vertices, faces, camera[b])
        assert (one.triangle_id >= 0).sum() > 20
        assert torch.equal(one.triangle_id[0], both.triangle_id[b])
        for field in ("bary", "depth", "mask"):
            torch.testing.assert_close(getattr(one, field)[0], getattr(both, field)[b], atol=1e-12, rtol=0)
        torch.testing.assert_close(interpolate(attrs[0], faces, one)[0], both_shared[b])
        torch.testing.assert_close(interpolate(attrs[b], faces, one)[0], both_per_camera[b])


def test_small_chunks_give_the_same_image():
    vertices, faces = box_mesh([-0.4, -0.4, -0.4], [0.4, 0.4, 0.4])
    camera = from_spherical(30.0, 20.0, 2.6, 45.0, 40, 40)
    ref = rasterize(vertices, faces, camera)
    tiny = rasterize(vertices, faces, camera, chunk_pairs=7)
    assert torch.equal(ref.triangle_id, tiny.triangle_id)
    torch.testing.assert_close(ref.bary, tiny.bary)


def test_icosphere_is_watertight():
    trimesh = pytest.importorskip("trimesh")
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.6)
    vertices = torch.tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.tensor(mesh.faces)
    camera = from_spherical(30.0, 20.0, 2.8, 42.5, 96, 96)
    frags = rasterize(vertices, faces, camera)
    # No cracks: every pixel whose ray hits the inscribed sphere of the polyhedron is covered.
    origins, dirs = camera_rays(camera)
    r_in = 0.6 * torch.cos(torch.tensor(0.2))  # well inside the polyhedron
    b = (origins * dirs).sum(-1)
    hit = b * b - (origins * origins).sum(-1) + r_in ** 2 > 0
    assert hit.sum() > 1000
    assert (frags.triangle_id[hit] >= 0).all()


@pytest.mark.parametrize("edge_x, column, coverage", [(10.3, 10, 0.3), (9.8, 9, 0.8), (10.5, 10, 0.5)])
def test_antialias_gives_box_filter_coverage(edge_x, column, coverage):
    camera = front_camera(20)
    x = (edge_x - 10) / float(camera.focal[0]) * 3.0  # the plane z = 0 is at depth 3
    vertices = torch.tensor([[x, -5.0, 0.0], [x, 5.0, 0.0], [-5.0, 0.0, 0.0]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])
    frags = rasterize(vertices, faces, camera)
    out = antialias(frags.mask.clone(), frags, vertices, faces, camera)[0, 10, :, 0]
    expected = (torch.arange(20) + 1.0).clamp(max=edge_x) - torch.arange(20).double()
    torch.testing.assert_close(out, expected.clamp(0, 1), atol=1e-6, rtol=0)  # float32-built pose
    assert abs(float(out[column]) - coverage) < 1e-6


@pytest.mark.parametrize("azimuth, elevation", [(60.0, -30.0), (200.0, 25.0)])
def test_antialias_gradients_match_finite_differences(azimuth, elevation):
    vertices, faces = tetrahedron()
    cam = from_spherical(azimuth, elevation, 2.0, 45.0, 20, 18)
    camera = Camera(cam.c2w.double(), cam.fovy.double(), 20, 18)
    attributes = torch.stack([vertices[:, 0] ** 2 + 0.3, torch.sin(2 * vertices[:, 1])], -1)
    w = torch.randn(1, 18, 20, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    background = torch.tensor([0.2, -0.4], dtype=torch.float64)

    def loss(verts, attrs):
        frags = rasterize(verts, faces, camera)
        colour = interpolate(attrs, faces, frags) + (1 - frags.mask) * background
        return (w * antialias(colour, frags, verts, faces, camera)).sum(), frags.triangle_id

    v = vertices.clone().requires_grad_()
    a = attributes.clone().requires_grad_()
    value, ids = loss(v, a)
    value.backward()
    eps = 1e-6
    for tensor, grad, is_vertex in ((vertices, v.grad, True), (attributes, a.grad, False)):
        numeric = torch.zeros_like(tensor)
        for idx in itertools.product(*map(range, tensor.shape)):
            vals = []
            for sign in (1, -1):
                p = tensor.clone()
                p[idx] += sign * eps
                value, ids_p = loss(p, attributes) if is_vertex else loss(vertices, p)
                assert torch.equal(ids_p, ids)
                vals.append(float(value))
            numeric[idx] = (vals[0] - vals[1]) / (2 * eps)
        assert numeric.abs().max() > 1e-3
        assert (grad - numeric).norm() / numeric.norm() <= 1e-4


def test_antialias_gives_silhouette_gradient_to_a_flat_colour():
    vertices, faces = tetrahedron()
    cam = from_spherical(60.0, -30.0, 2.0, 45.0, 20, 18)
    camera = Camera(cam.c2w.double(), cam.fovy.double(), 20, 18)
    v = vertices.clone().requires_grad_()
    frags = rasterize(v, faces, camera)
    colour = interpolate(torch.ones(4, 1, dtype=torch.float64), faces, frags)  # flat: no interior gradient
    colour.sum().backward(retain_graph=True)
    assert v.grad.abs().max() < 1e-12
    v.grad = None
    # Growing the mesh grows its antialiased area: the gradient points outwards on average.
    antialias(colour, frags, v, faces, camera).sum().backward()
    assert (v.grad * (vertices - vertices.mean(0))).sum() > 0


def test_public_api():
    assert set(mesh_raster.__all__) == {"Fragments", "antialias", "interpolate", "rasterize"}


@pytest.mark.parametrize("slope", [0.45, -1.8])
def test_antialias_matches_supersampled_coverage_of_a_slanted_edge(slope):
    """Per pixel, the antialiased mask is close to the area left of a slanted edge (64 × 64
    samples per pixel); counting the edge in both pair directions would make it ~3 px² off."""
    camera = front_camera(20)
    f = float(camera.focal[0])

    def world(px, py):  # pixel → the point of the plane z = 0 (depth 3) seen there
        return [(px - 10) * 3.0 / f, -(py - 10) * 3.0 / f, 0.0]

    a = 9.3  # the edge is x = a + slope · (y − 10) in pixels
    vertices = torch.tensor([world(a - 100 * slope, -90), world(a + 100 * slope, 110), world(-1000, 10)],
                            dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])
    frags = rasterize(vertices, faces, camera)
    out = antialias(frags.mask.clone(), frags, vertices, faces, camera)[0, ..., 0]
    samples = ((torch.arange(20)[:, None] + (torch.arange(64) + 0.5) / 64).reshape(-1)).double()
    inside = samples[None, :] < a + slope * (samples[:, None] - 10)  # [rows, columns]
    coverage = inside.double().view(20, 64, 20, 64).mean((1, 3))
    hard_error = float((frags.mask[0, ..., 0] - coverage).abs().sum())
    error = float((out - coverage).abs().sum())
    assert hard_error > 4.0 and error < 0.7, (hard_error, error)
    assert abs(float(out.sum() - coverage.sum())) < 0.05
