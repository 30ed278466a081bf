"""Contrast-limited adaptive histogram equalisation (CLAHE) in NumPy, for float images.

The image is rescaled to [0, 1] (filter outputs can be any float range), cut into a grid of
tiles, and each tile gets its own equalising look-up table: a histogram whose bins are clipped
at ``clip_limit`` x (tile pixels) with the excess spread evenly over all bins, then its
cumulative sum. Every pixel blends the tables of its four nearest tile centres bilinearly, so
there are no seams between tiles. This is the algorithm of ``skimage.exposure
.equalize_adapthist`` (which notebook 000 uses) written out with vectorised NumPy.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError


def _tile_edges(n: int, tiles: int) -> np.ndarray:
    return np.linspace(0, n, tiles + 1).round().astype(np.int64)


def _luts(bins: np.ndarray, tiles: tuple[int, int], nbins: int, clip_limit: float):
    """(Tr, Tc, nbins) equalising tables, one per tile."""
    h, w = bins.shape
    re, ce = _tile_edges(h, tiles[0]), _tile_edges(w, tiles[1])
    tile_r = np.searchsorted(re, np.arange(h), side="right") - 1
    tile_c = np.searchsorted(ce, np.arange(w), side="right") - 1
    tile_id = tile_r[:, None] * tiles[1] + tile_c[None, :]
    hist = np.bincount((tile_id * nbins + bins).ravel(), minlength=tiles[0] * tiles[1] * nbins)
    hist = hist.reshape(tiles[0], tiles[1], nbins).astype(np.float64)
    sizes = np.diff(re)[:, None] * np.diff(ce)[None, :]
    if clip_limit < 1:
        limit = np.maximum(clip_limit * sizes, 1.0)[..., None]
        excess = np.maximum(hist - limit, 0).sum(axis=-1, keepdims=True)
        hist = np.minimum(hist, limit) + excess / nbins
    cdf = np.cumsum(hist, axis=-1)
    return cdf / np.maximum(cdf[..., -1:], 1e-300), tile_r, tile_c, re, ce


def _blend_weights(n: int, edges: np.ndarray):
    """Index of the tile centre at/before each pixel, the next one, and the weight of the next."""
    centres = (edges[:-1] + edges[1:] - 1) / 2.0
    pos = np.arange(n, dtype=np.float64)
    lo = np.clip(np.searchsorted(centres, pos, side="right") - 1, 0, len(centres) - 1)
    hi = np.minimum(lo + 1, len(centres) - 1)
    span = np.where(hi > lo, centres[hi] - centres[lo], 1.0)
    frac = np.clip((pos - centres[lo]) / span, 0.0, 1.0)
    return lo, hi, np.where(hi > lo, frac, 0.0)


def clahe(
    image, tiles: int | tuple[int, int] = 8, clip_limit: float = 0.01, nbins: int = 256
) -> np.ndarray:
    """Equalise contrast locally; returns float64 in [0, 1] with the input's shape (H, W).

    Args:
        image: 2-D float array, any range (it is min-max rescaled first; constant -> zeros).
        tiles: tiles per axis (rows, cols) or one int for both; clipped to the image size.
        clip_limit: histogram clip as a fraction of the tile's pixels in (0, 1]; 1 disables
            clipping (plain adaptive equalisation); skimage's default is 0.01.
        nbins: histogram bins.

    >>> out = clahe(np.linspace(0.4, 0.6, 64).reshape(8, 8), tiles=1)
    >>> bool(out.max() - out.min() > 0.9)
    True
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2 or img.size == 0:
        raise CnnlabError(f"CLAHE needs a non-empty 2-D image; got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise CnnlabError("CLAHE input contains NaN or inf")
    if not 0 < clip_limit <= 1:
        raise CnnlabError(f"clip_limit={clip_limit} must be in (0, 1]")
    t = (tiles, tiles) if np.isscalar(tiles) else tuple(tiles)
    if len(t) != 2 or min(t) < 1:
        raise CnnlabError(f"tiles={tiles!r} must be a positive int or a pair")
    t = (min(int(t[0]), img.shape[0]), min(int(t[1]), img.shape[1]))
    lo_v, hi_v = img.min(), img.max()
    if hi_v == lo_v:
        return np.zeros_like(img)
    unit = (img - lo_v) / (hi_v - lo_v)
    bins = np.minimum((unit * nbins).astype(np.int64), nbins - 1)
    lut, _, _, re, ce = _luts(bins, t, nbins, clip_limit)
    r0, r1, fr = _blend_weights(img.shape[0], re)
    c0, c1, fc = _blend_weights(img.shape[1], ce)
    fr, fc = fr[:, None], fc[None, :]

    def at(rows, cols):
        return lut[rows[:, None], cols[None, :], bins]

    top = at(r0, c0) * (1 - fc) + at(r0, c1) * fc
    bottom = at(r1, c0) * (1 - fc) + at(r1, c1) * fc
    return np.clip(top * (1 - fr) + bottom * fr, 0.0, 1.0)
