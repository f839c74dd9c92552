"""Bin projected Gaussians into screen tiles: the (tile, depth)-sorted intersection list.

Every visible Gaussian overlaps the tiles its screen box [μ − r, μ + r] touches (the same tile
range as gsplat's `isect_tiles`). The Gaussians are ranked by depth, and the (Gaussian, tile)
pairs sorted by the key tile · V + depth rank, which lists each tile's Gaussians front to back,
as gsplat's 64-bit (tile | depth) sort key does.

The compositor wants regular tensors, so each tile's run of intersections is cut into chunks of
`chunk` slots; the last chunk of a tile is padded with a dummy Gaussian (index B·N) that is
transparent everywhere. Intersections therefore live in a [n_chunks, chunk] grid; the padding is
under one chunk per non-empty tile. Nothing here is differentiable (integer bookkeeping only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class TileBins:
    """Which Gaussian sits in which slot of which tile, front to back."""

    gaussians: torch.Tensor  # [C, L] int64 flat index b·N + n per slot; B·N marks padding
    chunk_tile: torch.Tensor  # [C] int64 global tile index (b·tiles_y + ty)·tiles_x + tx
    tile_first: torch.Tensor  # [G] int64 first chunk of each non-empty tile (chunks are tile-major)
    tile_chunks: torch.Tensor  # [G] int64 number of chunks of each non-empty tile
    n_isect: int  # real (unpadded) tile–Gaussian intersections
    n_images: int
    tiles_x: int
    tiles_y: int
    tile_size: int

    @property
    def n_tiles(self) -> int:  # per image
        return self.tiles_x * self.tiles_y


def _exclusive_cumsum(x: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(x, dim=0) - x


@torch.no_grad()
def bin_gaussians(means2d: torch.Tensor, radii: torch.Tensor, depths: torch.Tensor,
                  width: int, height: int, tile_size: int = 4, chunk: int | None = None) -> TileBins:
    """means2d [B, N, 2], radii [B, N, 2] (0 = culled), depths [B, N] → `TileBins`.

    `chunk` is the slot count per chunk; by default the power of two in [8, 64] nearest above half
    the mean load of a non-empty tile, which keeps the padding small and the chunks long enough
    for efficient batched matrix products.
    """
    B, N = depths.shape
    device = means2d.device
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    n_tiles = B * tiles_x * tiles_y

    ids = (radii > 0).all(dim=-1).reshape(-1).nonzero()[:, 0]  # [V] visible flat indices b·N + n
    ids = ids[torch.argsort(depths.reshape(-1)[ids])]  # front to back across all images
    centre = means2d.reshape(-1, 2).index_select(0, ids).float()  # [V, 2] pixels
    extent = radii.reshape(-1, 2).index_select(0, ids).float()
    limit = torch.tensor([tiles_x, tiles_y], device=device, dtype=torch.float32)
    lo = torch.minimum(torch.floor((centre - extent) / tile_size).clamp_min(0), limit).long()  # [V, 2]
    hi = torch.minimum(torch.ceil((centre + extent) / tile_size).clamp_min(0), limit).long()
    span_x, span_y = (hi - lo).unbind(-1)  # [V] tiles covered along x and y
    count = span_x * span_y  # [V]
    first_tile = (ids // N * tiles_y + lo[:, 1]) * tiles_x + lo[:, 0]  # [V] top-left tile

    # One row per (Gaussian, tile) pair: Gaussian-major, i.e. in depth order.
    owner = torch.repeat_interleave(count)  # [M] depth rank of the Gaussian
    k = torch.arange(len(owner), device=device) - (torch.cumsum(count, 0) - count)[owner]  # index in its box
    sx = span_x[owner]
    tile = first_tile[owner] + k // sx * tiles_x + k % sx  # [M]
    # Sort by (tile, depth rank): each tile's Gaussians come out front to back.
    V = max(len(ids), 1)
    key, _ = torch.sort(tile * V + owner)
    tile, gauss = key // V, ids[key % V]  # [M]

    per_tile = torch.bincount(tile, minlength=n_tiles)  # [T]
    if chunk is None:
        busy = max(int((per_tile > 0).sum()), 1)
        chunk = 1 << max(3, min(6, math.ceil(math.log2(max(len(gauss) / busy / 2, 1)))))
    chunks = (per_tile + chunk - 1) // chunk  # [T]
    first_chunk = _exclusive_cumsum(chunks)  # [T]
    # Slot of each pair: its tile's first slot + its rank inside the tile.
    shift = first_chunk * chunk - _exclusive_cumsum(per_tile)  # [T]
    n_chunks = int(chunks.sum())
    slots = torch.full((n_chunks * chunk,), B * N, dtype=torch.long, device=device)
    slots[shift[tile] + torch.arange(len(tile), device=device)] = gauss
    chunk_tile = torch.repeat_interleave(chunks)  # [C]
    busy = (chunks > 0).nonzero()[:, 0]  # [G] non-empty tiles
    return TileBins(slots.view(n_chunks, chunk), chunk_tile, first_chunk[busy], chunks[busy],
                    len(gauss), B, tiles_x, tiles_y, tile_size)
