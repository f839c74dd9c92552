"""Front-to-back alpha compositing of tile chunks, as one autograd Function.

Each tile's intersection list is cut into chunks of L slots (binning.py); the chunks of a tile
are consecutive, front to back. For slot i and pixel p of its tile, the exponent
log(o_i) − power_ip is a quadratic in the pixel's offset from the tile centre: `coefs` [C, L, 6]
times `basis` [6, P]. Per pixel, front to back, with gsplat's rules:

    alpha_i = min(0.999, exp(log_alpha_i)), set to 0 below 1/255
    T_i     = Π_{j<i} (1 − alpha_j)                  (a segmented scan, see below)
    w_i     = alpha_i T_i  while T_i (1 − alpha_i) > 1e-4, else 0
    out     = Σ_i w_i f_i                             per chunk: [F, L] @ [L, P]

The scan sums log(1 − alpha) along the slots of each chunk (cumsum from zero, so float32 never
subtracts large running totals) and carries chunk totals along the chunks of a tile in float64.

Early stop: chunks are evaluated in rounds, round k holding chunks [r_k, r_{k+1}) of every tile
(r = 0, 4, 8, 16, ...). A tile whose pixels all have T ≤ 1e-4 after a round has nothing left to
draw and drops out, so dense scenes skip most of their hidden Gaussians. Light scenes finish in
the first round.

Backward (the cut-off and the 1/255 threshold are held fixed, as in gsplat): with g_i = ∂L/∂w_i
and v_i = g_i w_i,

    ∂L/∂alpha_i = g_i T_i [kept] − S_i / (1 − alpha_i),   S_i = Σ_{j>i} v_j   (a suffix scan)
    ∂L/∂log_alpha_i = alpha_i ∂L/∂alpha_i = v_i − S_i alpha_i / (1 − alpha_i)   (0 where clamped)

Writing it by hand keeps the work at about two dozen passes over the [chunks, slots, pixels]
grid, where autograd's graph of the same forward takes about forty, and lets the backward skip
the chunks the forward skipped.
"""

from __future__ import annotations

import math

import torch

ALPHA_THRESHOLD = 1.0 / 255.0  # alphas below this are skipped (gsplat's ALPHA_THRESHOLD)
MAX_ALPHA = 0.999  # a single Gaussian never makes a pixel fully opaque
MIN_TRANSMITTANCE = 1e-4  # a pixel stops before its transmittance would reach this
FIRST_ROUND = 4  # chunks per tile evaluated before the first early-stop check; then doubling
_LOG_MIN_T = math.log(MIN_TRANSMITTANCE)
_LOG_FLOOR_ALPHA = math.log(ALPHA_THRESHOLD) - 1.0  # exp() of it is still under the threshold
_LOG_FLOOR_T = _LOG_MIN_T - 1.0  # a transmittance already past the cut-off


def composite_chunks(coefs: torch.Tensor, basis: torch.Tensor, feats: torch.Tensor,
                     tile_first: torch.Tensor, tile_chunks: torch.Tensor, clamp_alpha: bool = True,
                     first_round: int = FIRST_ROUND) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ w f per chunk, feature and pixel [C, F, P], evaluated [C] bool): chunks that the early
    stop skipped were not evaluated (their weights are all 0).

    coefs [C, L, 6] and basis [6, P]: log alpha = coefs @ basis; feats [C, L, F];
    tile_first / tile_chunks [G]: first chunk and chunk count of each non-empty tile.
    `clamp_alpha=False` skips the 0.999 clamp, exact when no opacity exceeds 0.999.
    """
    return _Composite.apply(coefs, basis, feats, tile_first, tile_chunks, clamp_alpha, first_round)


def _below(value: float, dtype: torch.dtype) -> float:
    """The largest `dtype` number under `value`: threshold(x, it) keeps exactly x ≥ value."""
    v = torch.tensor(value, dtype=dtype)
    return float(torch.nextafter(v, torch.zeros_like(v)))


def _exclusive_cumsum(x: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(x, dim=0) - x


class _Round:
    """The chunks of one round: `ids` [c] (None: all chunks, in order), the tile (group) of each,
    and the position in `ids` of the first chunk of its tile in this round."""

    def __init__(self, tile_first, tile_chunks, tiles, start, stop, everything):
        counts = tile_chunks[tiles].clamp_max(stop) - start  # [g] chunks of each tile this round
        offsets = _exclusive_cumsum(counts)
        self.group = torch.repeat_interleave(tiles, counts)  # [c]
        self.first = torch.repeat_interleave(offsets, counts)  # [c]
        self.ids = None if everything else (
            torch.repeat_interleave(tile_first[tiles] + start - offsets, counts)
            + torch.arange(int(counts.sum()), device=counts.device))


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, coefs, basis, feats, tile_first, tile_chunks, clamp_alpha, first_round):
        C, L, _ = coefs.shape
        P, F, G = basis.shape[1], feats.shape[2], len(tile_first)
        threshold = _below(ALPHA_THRESHOLD, coefs.dtype)
        out = None  # [C, F, P]
        log_t_tile = coefs.new_zeros(G, P)  # log T of each tile's pixels after the rounds so far
        live = torch.ones(G, dtype=torch.bool, device=coefs.device)
        most = int(tile_chunks.max()) if G else 0
        evaluated = torch.zeros(C, dtype=torch.bool, device=coefs.device)
        rounds, saved = [], []
        start, stop = 0, first_round
        while start < most:
            tiles = (live & (tile_chunks > start)).nonzero()[:, 0]  # [g]
            if len(tiles) == 0:
                break
            rnd = _Round(tile_first, tile_chunks, tiles, start, stop, start == 0 and stop >= most)
            sel = (lambda t: t) if rnd.ids is None else (lambda t: t[rnd.ids])

            # exp() of very negative numbers takes the CPU's slow denormal path (15× slower);
            # clamped values still give alphas under the threshold.
            log_alpha = (sel(coefs) @ basis).clamp_min_(_LOG_FLOOR_ALPHA)  # [c, L, P]
            alpha = log_alpha.exp_()
            if clamp_alpha:
                alpha.clamp_max_(MAX_ALPHA)
            alpha = torch.nn.functional.threshold(alpha, threshold, 0.0)
            log_keep = torch.log1p(alpha.neg())  # log(1 − alpha) ≥ log(0.001)
            log_t = torch.cumsum(log_keep, dim=1)  # log T after each slot, within the chunk
            totals = log_t[:, -1].clone()  # [c, P]
            running = torch.cumsum(totals.double(), dim=0) - totals.double()  # exclusive
            carry = (running - running[rnd.first]).to(totals.dtype) + log_t_tile[rnd.group]
            log_t += carry[:, None, :]
            log_t_before = torch.sub(log_t, log_keep, out=log_keep).clamp_min_(_LOG_FLOOR_T)
            weights = log_t_before.exp_().mul_(alpha)  # [c, L, P] alpha · T before
            weights.masked_fill_(log_t <= _LOG_MIN_T, 0.0)
            chunk_out = torch.bmm(sel(feats).transpose(1, 2), weights)  # [c, F, P]
            if rnd.ids is None:
                out = chunk_out
            else:
                out = coefs.new_zeros(C, F, P) if out is None else out
                out[rnd.ids] = chunk_out

            evaluated[slice(None) if rnd.ids is None else rnd.ids] = True
            log_t_tile.index_add_(0, rnd.group, totals)
            live[tiles] = (log_t_tile[tiles] > _LOG_MIN_T).any(dim=-1)
            rounds.append(rnd.ids)
            saved += [alpha, weights]
            start, stop = stop, 2 * stop

        out = coefs.new_zeros(C, F, P) if out is None else out  # no intersections at all
        ctx.rounds, ctx.clamp_alpha = rounds, clamp_alpha
        ctx.save_for_backward(basis, feats, tile_first, tile_chunks, *saved)
        ctx.shape = (C, L)
        ctx.mark_non_differentiable(evaluated)
        return out, evaluated

    @staticmethod
    def backward(ctx, grad_out, _):
        basis, feats, tile_first, tile_chunks, *saved = ctx.saved_tensors
        C, L = ctx.shape
        P = basis.shape[1]
        everything = len(ctx.rounds) == 1 and ctx.rounds[0] is None
        if not everything:
            grad_coefs, grad_feats = grad_out.new_zeros(C, L, basis.shape[0]), torch.zeros_like(feats)
        # Pass 1, per round: g_i w_i and its suffix sums within each chunk.
        rounds = []
        chunk_totals = grad_out.new_zeros(C, P)  # Σ_i v_i of every chunk (0 where skipped)
        for k, ids in enumerate(ctx.rounds):
            alpha, weights = saved[2 * k], saved[2 * k + 1]  # [c, L, P]
            g = grad_out if ids is None else grad_out[ids]  # [c, F, P]
            f = feats if ids is None else feats[ids]  # [c, L, F]
            gf = torch.bmm(g, weights.transpose(1, 2)).transpose(1, 2)  # [c, L, F]
            v = torch.bmm(f, g).mul_(weights)  # [c, L, P] g_i w_i
            suffix = torch.cumsum(v, dim=1)
            totals = suffix[:, -1].clone()  # [c, P]
            suffix = torch.sub(totals[:, None, :], suffix, out=suffix)  # Σ_{j>i} v_j within the chunk
            if everything:
                chunk_totals = totals
            else:
                chunk_totals[ids] = totals
            rounds.append((ids, alpha, v, suffix, gf))
        # Σ v over the later chunks of the same tile (float64 running sums, as in the forward).
        running = torch.cumsum(chunk_totals.double(), dim=0)  # inclusive, over all chunks
        chunk_last = torch.repeat_interleave(tile_first + tile_chunks - 1, tile_chunks)  # [C]
        later = (running[chunk_last] - running).to(chunk_totals.dtype)  # [C, P]
        # Pass 2, per round: ∂L/∂log_alpha = v − S α / (1 − α), then ∂L/∂coefs.
        for ids, alpha, v, suffix, gf in rounds:
            suffix += (later if ids is None else later[ids])[:, None, :]
            grad = suffix.mul_(alpha).div_(1.0 - alpha)  # S α / (1 − α)
            grad = torch.sub(v, grad, out=grad)
            if ctx.clamp_alpha:
                grad.masked_fill_(alpha >= MAX_ALPHA, 0.0)
            gc = grad @ basis.T  # [c, L, 6]
            if ids is None:
                grad_coefs, grad_feats = gc, gf
            else:
                grad_coefs[ids], grad_feats[ids] = gc, gf
        return grad_coefs, None, grad_feats, None, None, None, None
