"""The reference pseudo-label oracle: a straightforward, independent transcription of what the reference release
does, step by step, on full frames (erosion, Sobel and masks per component, HDBSCAN via
`hdbscan.HDBSCAN(...).fit_predict` on every pixel of a split component). It shares no code with
`mrdino.instances`: tests/test_pseudolabels.py compares `instances_from_flow` with it, bench/pseudolabels.py times
mrdino against it."""
import numpy as np
import hdbscan
from scipy import ndimage as ndi


def _disk(r):
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y) <= r * r


def _fg_by_text(mag, tau, decimals):
    "The reference writes |f| as '%.3f' text and compares the parsed number: do exactly that near the threshold."
    fg = mag > tau
    if decimals is None: return fg
    near = np.flatnonzero(np.abs(mag.astype(np.float64) - tau) < 10.0 ** -decimals)
    fmt = f'%.{decimals}f'
    fg.flat[near] = [float(fmt % x) > tau for x in mag.flat[near].tolist()]
    return fg


def straightforward_instances(flow, tau_fg=2.5, tau_grad=20.0, erosion_radius=10, min_cluster_size=30,
                              min_samples=None, spatial_weight=60, direction_weight=100, n_dir_bins=16,
                              min_region=100, min_fg_frac=0.0005, edge='reference', fg_decimals=3,
                              border_eroded=False, **ignored):
    "Reference behaviour, transcribed step by step on full frames. Returns (H, W) int32, ids renumbered 1..S."
    flow = np.asarray(flow, np.float32)
    u, v = flow[..., 0], flow[..., 1]
    H, W = u.shape
    fg = _fg_by_text(np.sqrt(u ** 2 + v ** 2), tau_fg, fg_decimals)
    out = np.zeros((H, W), np.int32)
    if fg.sum() < H * W * min_fg_frac: return out
    labels, n = ndi.label(fg, structure=np.ones((3, 3)))
    angles = (np.arctan2(v, u) + 2 * np.pi) % (2 * np.pi)
    dirs = np.floor(angles / (2 * np.pi / n_dir_bins)).astype(int)
    next_id = 1
    for k in range(1, n + 1):
        region = labels == k
        eroded = ndi.binary_erosion(region, _disk(erosion_radius), border_value=0 if border_eroded else 1)
        gx, gy = ndi.sobel(u), ndi.sobel(v)
        e2 = gx ** 2 + gy ** 2
        if edge == 'both_axes': e2 = e2 + ndi.sobel(u, axis=0) ** 2 + ndi.sobel(v, axis=0) ** 2
        interior_edges = np.sqrt(e2) * eroded
        if np.any(interior_edges[region] > tau_grad):
            coords = np.column_stack(np.nonzero(region))
            X = np.hstack((flow[region], coords * spatial_weight, dirs[region].reshape(-1, 1) * direction_weight))
            lab = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                                  allow_single_cluster=False).fit_predict(X)
            full = np.full((H, W), -1); full[region] = lab
            for c in np.unique(lab):
                if c == -1: continue
                out[full == c] = next_id; next_id += 1
        else:
            out[region] = next_id; next_id += 1
    for i in np.unique(out):
        if i and (out == i).sum() < min_region: out[out == i] = 0
    ids = np.unique(out)
    lut = np.zeros(ids.max() + 1, np.int32); lut[ids[ids > 0]] = np.arange(1, (ids > 0).sum() + 1)
    return lut[out]


def toy_kitti_flow(seed=0, noise=0.3, H=376, W=1240):
    "A KITTI-size flow: touching cars moving apart, a rigid expanding car, two walkers, a tiny blob, noise."
    rng = np.random.default_rng(seed)
    f = rng.normal(0, noise, (H, W, 2)).astype(np.float32)
    yy, xx = np.mgrid[0:H, 0:W]
    def put(r0, r1, c0, c1, fu, fv, s=0.0):
        m = (yy >= r0) & (yy < r1) & (xx >= c0) & (xx < c1)
        f[m, 0] += fu + s * (xx[m] - (c0 + c1) / 2); f[m, 1] += fv + s * (yy[m] - (r0 + r1) / 2)
    put(200, 290, 100, 300, 8, 0); put(210, 300, 300, 480, -6, 1); put(180, 260, 700, 880, 5, 0.5, 0.02)
    put(150, 260, 1000, 1040, 3, -3); put(150, 260, 1040, 1075, -3.5, 3); put(50, 56, 600, 610, 10, 0)
    return f
