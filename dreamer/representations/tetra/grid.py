"""A tetrahedral grid over the cube [−bound, bound]³: R³ cubes, each split into 6 tetrahedra.

The split is the Kuhn (Freudenthal) one: every cube is cut along its main diagonal (corner 000 to
corner 111) into the 6 tetrahedra that follow the 6 orderings of the axes. Neighbouring cubes then
share their face diagonals, so the tetrahedra tile space with no gaps or T-junctions, and marching
tetrahedra over them gives a closed surface. Edges are deduplicated once here
(`TetGrid.edges`), so the marching step computes each cut vertex once and neighbouring tetrahedra
share it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

# local edges of a tetrahedron (vertex pairs); marching tetrahedra indexes edges in this order
LOCAL_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


@dataclass
class TetGrid:
    vertices: torch.Tensor  # [V, 3] float32 rest positions
    tets: torch.Tensor  # [T, 4] long vertex indices
    edges: torch.Tensor  # [E, 2] long, unique undirected edges (smaller index first)
    tet_edges: torch.Tensor  # [T, 6] long index into `edges` of each tet's LOCAL_EDGES
    cell: float  # side of one cube, world units

    def to(self, device) -> "TetGrid":
        return TetGrid(self.vertices.to(device), self.tets.to(device), self.edges.to(device),
                       self.tet_edges.to(device), self.cell)


def kuhn_tets() -> torch.Tensor:
    """[6, 4] corner indices (bit 0 = x, bit 1 = y, bit 2 = z) of the 6 tetrahedra of a unit cube."""
    tets = []
    for order in itertools.permutations(range(3)):
        corner, path = 0, [0]
        for axis in order:  # walk from corner 000 to 111 one axis at a time
            corner |= 1 << axis
            path.append(corner)
        tets.append(path)
    return torch.tensor(tets, dtype=torch.long)


def tet_grid(resolution: int, bound: float = 1.0) -> TetGrid:
    """The grid of `resolution`³ cubes over [−bound, bound]³."""
    n = resolution + 1
    ax = torch.linspace(-bound, bound, n)
    vertices = torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"), dim=-1).reshape(-1, 3)
    ii = torch.arange(resolution)
    cx, cy, cz = (c.reshape(-1) for c in torch.meshgrid(ii, ii, ii, indexing="ij"))  # cube origins
    bits = torch.arange(8)
    corner_ids = ((cx[:, None] + (bits & 1)) * n + (cy[:, None] + ((bits >> 1) & 1))) * n + (cz[:, None] + (bits >> 2))
    tets = corner_ids[:, kuhn_tets()].reshape(-1, 4)  # [R³·6, 4]
    pairs = tets[:, torch.tensor(LOCAL_EDGES)]  # [T, 6, 2]
    pairs = torch.sort(pairs, dim=-1).values.reshape(-1, 2)
    keys, inverse = torch.unique(pairs[:, 0] * len(vertices) + pairs[:, 1], return_inverse=True)  # 1-D: fast
    edges = torch.stack([keys // len(vertices), keys % len(vertices)], dim=-1)
    return TetGrid(vertices, tets, edges, inverse.view(-1, 6), 2.0 * bound / resolution)
