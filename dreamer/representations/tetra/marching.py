"""Marching tetrahedra: the zero level set of an SDF on a tetrahedral grid as a triangle mesh.

Inside is sdf < 0. A tetrahedron whose 4 vertices are not all on one side is cut by the surface:
with one vertex apart the cut is a triangle over its 3 edges, with two on each side a quad over the
4 edges joining the two pairs (two triangles). The cut point on edge (a, b) is where the linear
interpolation of the SDF vanishes, p = (v_a·s_b − v_b·s_a)/(s_b − s_a); it is differentiable in
both the vertex positions and the SDF values, which is how a rendering loss moves the surface.
Triangles are wound so that their normal points outwards (from the inside vertices to the
outside ones); the case table below only lists edges, and the winding is fixed per triangle.
"""

from __future__ import annotations

import torch

from dreamer.representations.tetra.grid import LOCAL_EDGES, TetGrid


def _case_table() -> tuple[torch.Tensor, torch.Tensor]:
    """([16, 6] local edge indices of up to two triangles per inside-pattern, −1 padded; [16] triangle counts)."""
    edge_of = {frozenset(e): k for k, e in enumerate(LOCAL_EDGES)}
    table = torch.full((16, 6), -1, dtype=torch.long)
    counts = torch.zeros(16, dtype=torch.long)
    for case in range(16):
        inside = [v for v in range(4) if case >> v & 1]
        outside = [v for v in range(4) if not case >> v & 1]
        if len(inside) in (1, 3):  # one vertex apart: a triangle over its three edges
            lone = inside[0] if len(inside) == 1 else outside[0]
            rest = [v for v in range(4) if v != lone]
            table[case, :3] = torch.tensor([edge_of[frozenset((lone, v))] for v in rest])
            counts[case] = 1
        elif len(inside) == 2:  # a quad; its cycle alternates the shared inside / outside vertex
            (a, b), (c, d) = inside, outside
            cycle = [edge_of[frozenset(p)] for p in ((a, c), (b, c), (b, d), (a, d))]
            table[case] = torch.tensor([cycle[0], cycle[1], cycle[2], cycle[0], cycle[2], cycle[3]])
            counts[case] = 2
    return table, counts


CASE_TABLE, CASE_COUNTS = _case_table()


def marching_tetrahedra(vertices: torch.Tensor, sdf: torch.Tensor, grid: TetGrid
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mesh vertices [M, 3], faces [F, 3] long, cut edges [M, 2] long grid-vertex pairs).

    vertices [V, 3] are the (possibly deformed) grid vertices, sdf [V] the signed distances; the
    mesh vertices carry their gradients. Empty tensors when the surface misses the grid.
    """
    device = vertices.device
    inside = sdf < 0
    edges = grid.edges
    cut = inside[edges[:, 0]] != inside[edges[:, 1]]  # [E]
    cut_edges = edges[cut]
    a, b = cut_edges[:, 0], cut_edges[:, 1]
    sa, sb = sdf[a].unsqueeze(-1), sdf[b].unsqueeze(-1)
    mesh_vertices = (vertices[a] * sb - vertices[b] * sa) / (sb - sa)
    vertex_of_edge = torch.full((len(edges),), -1, dtype=torch.long, device=device)
    vertex_of_edge[cut] = torch.arange(len(cut_edges), device=device)

    tets = grid.tets
    occupancy = inside[tets].long()  # [T, 4]
    count = occupancy.sum(-1)
    active = (count > 0) & (count < 4)
    case = (occupancy[active] * (2 ** torch.arange(4, device=device))).sum(-1)
    table, counts = CASE_TABLE.to(device), CASE_COUNTS.to(device)
    local = table[case]  # [A, 6]
    tet_edge_ids = grid.tet_edges[active]  # [A, 6]
    faces = []
    for slot in range(2):
        has = counts[case] > slot
        ids = torch.gather(tet_edge_ids[has], 1, local[has][:, 3 * slot:3 * slot + 3])
        faces.append(vertex_of_edge[ids])
    faces = torch.cat(faces)
    if len(faces) == 0:
        return mesh_vertices, faces.view(0, 3), cut_edges
    faces = _wind_outwards(faces, mesh_vertices.detach(), vertices.detach(), cut_edges, inside)
    return mesh_vertices, faces, cut_edges


def _wind_outwards(faces: torch.Tensor, mesh_vertices: torch.Tensor, grid_vertices: torch.Tensor,
                   cut_edges: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Flip the triangles whose normal points inwards (against inside → outside along their edges)."""
    p = mesh_vertices[faces]  # [F, 3, 3]
    normal = torch.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], dim=-1)
    ends = cut_edges[faces]  # [F, 3, 2] grid vertices of each face vertex's edge
    first_inside = inside[ends[..., 0]].unsqueeze(-1)  # [F, 3, 1]
    start = torch.where(first_inside, grid_vertices[ends[..., 0]], grid_vertices[ends[..., 1]])
    stop = torch.where(first_inside, grid_vertices[ends[..., 1]], grid_vertices[ends[..., 0]])
    outward = (stop - start).sum(1)  # [F, 3]
    flip = (normal * outward).sum(-1) < 0
    return torch.where(flip.unsqueeze(-1), faces[:, [0, 2, 1]], faces)
