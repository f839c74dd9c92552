"""Fill what no camera can see: space that a level set walls off from every viewing direction.

Score distillation only constrains what the training cameras see. A field fitted to a cube's
views is often a thick shell, open underneath (an upturned bucket): its silhouettes are right,
its inside is never seen, and marching cubes exports a hollow shape. An empty cell is kept empty
only if some viewing direction sees it: the transmittance from the cell out of the volume along
that direction, with the solid opaque, is not (nearly) zero; every other cell is filled. Directions are those of
cameras around the object from just below the horizon to straight overhead, so the space under
a table top or a chair seat (seen from the side) and a mug's inside (seen from above) stay empty,
while the inside of an open-bottomed shell, seen from none of them, is filled.

Tunnels: a shell can also be pierced by narrow tunnels that reach an inner cavity (an exported cube
with Euler number −18 enclosed 0.137 of its 0.343 volume); a view direction along a tunnel sees the
cavity, so it would stay empty. Visibility is therefore judged with the solid morphologically closed
(dilated, then eroded, by `CLOSING` cells): tunnels narrower than about 2·CLOSING cells are plugged,
their cavities are seen from nowhere and filled, and the plugs stay in the solid. Openings wider than
that (a mug's mouth, the space under a table) are unchanged by a closing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# camera elevations (degrees) and azimuths the viewing directions are taken from: the default
# orbit spans −10° … 45°; higher ones and the zenith stand in for overhead views
VIEW_ELEVATIONS = (-10.0, 10.0, 30.0, 55.0, 90.0)
VIEW_AZIMUTHS = 12
WORK_RESOLUTION = 64  # grids are judged at most this fine (each direction resamples the grid twice)
SEEN_TRANSMITTANCE = 0.02  # seen: more light than this escapes (a crossing of the solid leaves e^-50; the margin absorbs resampling blur)
OPAQUE_DEPTH = 50.0  # optical depth of one solid cell (blocks light completely)
CLOSING = 1  # cells (at the work resolution) of the closing that plugs tunnels before visibility is judged


def view_directions(elevations=VIEW_ELEVATIONS, azimuths: int = VIEW_AZIMUTHS) -> torch.Tensor:
    """[N, 3] unit vectors from the object towards the cameras (+Y up; one for the zenith)."""
    dirs = []
    for elevation in elevations:
        e = math.radians(elevation)
        count = 1 if abs(elevation) >= 90.0 else azimuths
        for k in range(count):
            a = 2 * math.pi * k / count
            dirs.append((math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)))
    return torch.tensor(dirs, dtype=torch.float32)


def _frame(direction: torch.Tensor) -> torch.Tensor:
    """[3, 3] rotation whose third column is `direction` (an orthonormal frame around it)."""
    helper = torch.tensor([1.0, 0.0, 0.0]) if abs(float(direction[0])) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
    u = torch.linalg.cross(helper, direction)
    u = u / u.norm()
    v = torch.linalg.cross(direction, u)
    return torch.stack([u, v, direction], dim=1)


def _resample(volume: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """out(q) = volume(rotation @ q) over [−1, 1]³ ([1, 1, D, H, W] indexed z, y, x; zeros outside)."""
    theta = torch.cat([rotation, torch.zeros(3, 1)], dim=1)[None].to(volume)
    grid = F.affine_grid(theta, list(volume.shape), align_corners=False)
    return F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def seen_cells(depth: torch.Tensor, directions: torch.Tensor | None = None) -> torch.Tensor:
    """[R, R, R] bool (indexed x, y, z over [−1, 1]³): cells from which at least SEEN_TRANSMITTANCE
    of the light escapes along one of `directions` (default `view_directions()`), given each cell's
    optical depth `depth` [R, R, R] (density × cell size). What is dense is assumed to lie inside
    the unit ball, as library objects do, so rotating the grid never clips it."""
    directions = view_directions() if directions is None else directions
    volume = depth.float().permute(2, 1, 0)[None, None]  # x, y, z -> grid_sample's D=z, H=y, W=x
    seen = torch.zeros_like(volume, dtype=torch.bool)
    for direction in directions:
        rotation = _frame(direction)
        turned = _resample(volume, rotation)  # turned(q) = depth(R q): +z of q runs along the direction
        ahead = turned.flip(2).cumsum(dim=2).flip(2) - turned  # optical depth beyond each cell
        # back to the world grid as transmittance, which interpolates sanely between a wall and air
        seen |= _resample(torch.exp(-ahead), rotation.T) > SEEN_TRANSMITTANCE
    return seen[0, 0].permute(2, 1, 0)


def close(solid: torch.Tensor, cells: int) -> torch.Tensor:
    """`solid` [R, R, R] bool dilated then eroded by `cells` (a (2·cells + 1)³ cube): gaps and tunnels
    narrower than about 2·cells are filled, the outline is otherwise kept."""
    if cells <= 0:
        return solid
    k = 2 * cells + 1
    grown = F.max_pool3d(solid.float()[None, None], k, stride=1, padding=cells)
    shrunk = -F.max_pool3d(-grown, k, stride=1, padding=cells)  # erosion (outside the grid counts as empty)
    return solid | (shrunk[0, 0] > 0.5)


def fill_unseen(solid: torch.Tensor, directions: torch.Tensor | None = None,
                work_resolution: int = WORK_RESOLUTION, closing: int = CLOSING) -> torch.Tensor:
    """`solid` [R, R, R] bool with every empty cell that no viewing direction sees filled (rays are
    blocked where they cross `solid`).

    Visibility is judged on a grid of at most `work_resolution` cells a side (a coarse cell's
    optical depth is that of the solid share it holds); the unseen, mostly empty coarse cells
    found there fill the fine cells they cover. (The slit this can leave along a wall is closed by
    `density_to_mesh`'s hole filling when the wall encloses it.) Visibility is judged with the coarse
    solid closed by `closing` cells (module doc: tunnels), and the plugged tunnels are filled too."""
    res = solid.shape[0]
    factor = max(1, -(-res // work_resolution))
    share = F.avg_pool3d(solid.float()[None, None], factor, ceil_mode=True)[0, 0]  # solid share per coarse cell
    plugs = close(share > 0.5, closing) & (share <= 0.5)  # coarse cells the closing adds
    share = torch.where(plugs, torch.ones_like(share), share)
    unseen = (~seen_cells(share * factor * OPAQUE_DEPTH, directions) & (share <= 0.5)) | plugs
    unseen = unseen.float()[None, None]
    if factor > 1:
        unseen = F.interpolate(unseen, scale_factor=factor, mode="nearest")[..., :res, :res, :res]
    return solid | (unseen[0, 0] > 0)
