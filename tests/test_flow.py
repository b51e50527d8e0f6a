"Flow backends, corner statistics, quasi-static retrieval and the explorer widget (CPU, small inputs)."
import numpy as np
import cv2
import pytest

from mrdino.flow import (TAU_STATIC, DIS_PRESETS, FlowExplorer, camera_still_truth, compute_flow, corner_means,
                         get_backend, is_quasi_static, iter_flow, quasi_static_runs,
                         retrieval_metrics, retrieve_quasi_static, sequence_flow)


def texture(h, w, seed=0):
    t = cv2.GaussianBlur(np.random.default_rng(seed).random((h, w)).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(t, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)

def shifted_pair(dx, dy, h=96, w=160):
    "Frame 1 shows frame 0's texture moved by (-dx, -dy): the crop window moved by (dx, dy)."
    t = texture(h + 40, w + 40)
    a = t[20:20 + h, 20:20 + w]
    b = t[20 + dy:20 + dy + h, 20 + dx:20 + dx + w]
    return np.repeat(a[..., None], 3, -1), np.repeat(b[..., None], 3, -1)

# ---------------------------------------------------------------- backends

@pytest.mark.parametrize('backend', ['dis', 'dis_medium', 'dis_ultrafast', 'farneback', 'tvl1'])
def test_backends_recover_a_known_shift(backend):
    a, b = shifted_pair(3, -2)
    f = compute_flow(a, b, backend)
    assert f.shape == (96, 160, 2) and f.dtype == np.float32
    np.testing.assert_allclose(np.median(f[16:-16, 16:-16].reshape(-1, 2), 0), [-3, 2], atol=0.2)

def test_tvl1_exists_in_this_opencv():
    assert hasattr(cv2, 'optflow') and hasattr(cv2.optflow, 'DualTVL1OpticalFlow_create')

def test_dis_presets_and_bad_names():
    assert {'ultrafast', 'fast', 'medium'} <= set(DIS_PRESETS)
    with pytest.raises(ValueError, match='preset'): get_backend('dis', preset='slowest')
    with pytest.raises(ValueError, match='unknown flow backend'): get_backend('pwcnet')
    assert get_backend('dis') is get_backend('dis')                        # cached

def test_bad_frames_are_named():
    a, b = shifted_pair(1, 1)
    with pytest.raises(ValueError, match='frame 1 is 160×50, frame 0 is 160×96'): compute_flow(a, b[:50])
    with pytest.raises(TypeError, match='uint8'): compute_flow(a.astype(np.float32), b)
    with pytest.raises(ValueError, match='1 frame'): sequence_flow(a[None], progress=False)
    with pytest.raises(ValueError, match='0 frames'): sequence_flow([], progress=False)
    seq = [a, b, a, b[:, :100]]
    with pytest.raises(ValueError, match='frame 3 is 100×96, frame 0 is 160×96'): sequence_flow(seq, progress=False)

def test_nan_flow_is_an_error():
    from mrdino.flow import FlowBackend
    class Broken(FlowBackend):
        name = 'broken'
        def pair(self, a, b): return np.full(a.shape[:2] + (2,), np.nan, np.float32)
    a, b = shifted_pair(1, 1)
    with pytest.raises(ValueError, match='NaN/inf'): list(iter_flow([a, b], Broken(), progress=False))
    with pytest.raises(ValueError, match='NaN/inf'): corner_means(np.full((10, 10, 2), np.inf))

def test_sequence_flow_and_batches():
    a, b = shifted_pair(2, 0)
    frames = np.stack([a, b, b, a])
    fl = sequence_flow(frames, progress=False)
    assert fl.shape == (3, 96, 160, 2)
    inner = fl[:, 16:-16, 16:-16].reshape(3, -1, 2)
    np.testing.assert_allclose(np.median(inner, 1), [[-2, 0], [0, 0], [2, 0]], atol=0.2)
    ts = [t for t, _ in iter_flow(frames, 'dis', progress=False, batch_size=2)]
    assert ts == [0, 1, 2]

# ---------------------------------------------------------------- corner statistics

def reference_corner_means(flow, frac=0.15):
    "The reference's statistic, restated: magnitude, then numpy slices with negative starts."
    mag = np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2)
    H, W = mag.shape
    h, w = int(H * frac), int(W * frac)
    return [mag[:h, :w].mean(), mag[:h, -w:].mean(), mag[-h:, :w].mean(), mag[-h:, -w:].mean()]

@pytest.mark.parametrize('shape,frac', [((20, 40), 0.15), ((126, 420), 0.15), ((375, 1242), 0.15), ((33, 17), 0.3),
                                        ((10, 10), 0.5)])
def test_corner_means_match_the_reference_statistic(shape, frac):
    flow = np.random.default_rng(1).normal(size=shape + (2,)).astype(np.float32) * 3
    np.testing.assert_allclose(corner_means(flow, frac), reference_corner_means(flow, frac), rtol=1e-6)

def test_corner_patch_size_truncates():
    # 20×40 at 0.15 → 3×6 corners: a value at row 3 / column 6 must not count
    f = np.zeros((20, 40, 2), np.float32)
    f[3, :, 0] = 10; f[:, 6, 0] = 10; f[:, 33, 0] = 10; f[16, :, 0] = 10
    np.testing.assert_array_equal(corner_means(f), 0)
    f[2, 5, 0] = 18                                      # inside TL: mean 18 / 18 pixels = 1
    np.testing.assert_allclose(corner_means(f), [1, 0, 0, 0])

@pytest.mark.parametrize('frac', [0, -0.1, 0.51, 1.0, float('nan')])
def test_corner_fraction_out_of_range(frac):
    with pytest.raises(ValueError, match='out of range'): corner_means(np.zeros((20, 20, 2)), frac)

def test_quasi_static_rule_is_strict_and_counts_corners():
    means = np.array([[0, 0, 0, 9], [0, 0, 9, 9], [1.7, 0, 0, 0], [1.69, 1.69, 1.69, 5]])
    np.testing.assert_array_equal(is_quasi_static(means, 1.7), [True, False, True, True])
    np.testing.assert_array_equal(is_quasi_static(means, 1.7, min_corners=4), [False, False, False, False])
    assert is_quasi_static(np.zeros((8, 8, 2)), 0.5) is True
    with pytest.raises(ValueError): is_quasi_static(means, 0)
    with pytest.raises(ValueError): is_quasi_static(means, 1.0, min_corners=5)

def reference_runs(flags, L):
    "The reference's scan, restated: from i, if the next L frames all qualify, take the run to its end."
    keep, i, n = np.zeros(len(flags), bool), 0, len(flags)
    while i < n - L + 1:
        if all(flags[i:i + L]):
            while i < n and flags[i]: keep[i] = True; i += 1
        else: i += 1
    return keep

def test_runs_match_the_reference_scan():
    rng = np.random.default_rng(0)
    for _ in range(300):
        flags = rng.random(int(rng.integers(0, 40))) < rng.uniform(0.3, 0.95)
        for L in (1, 3, 5):
            np.testing.assert_array_equal(quasi_static_runs(flags, L), reference_runs(flags, L))

def test_presets():
    assert (TAU_STATIC['kitti'], TAU_STATIC['tri_pd'], TAU_STATIC['movi_e']) == (1.7, 0.5, 1.7)
    assert 0 < TAU_STATIC['synthetic'] < 5

# ---------------------------------------------------------------- retrieval and metrics

def pan_frames(n_still, n_pan, speed=3, h=96, w=160):
    t = texture(h + 20, w + 20 + speed * n_pan)
    xs = [0] * n_still + [speed * (k + 1) for k in range(n_pan)]
    return [np.repeat(t[10:10 + h, 10 + x:10 + x + w, None], 3, -1) for x in xs]

def test_retrieval_table():
    fr = pan_frames(7, 2) + pan_frames(7, 0)        # 7 still, 2 panning, a cut, 7 still
    tab = retrieve_quasi_static(fr, 'dis', tau_static=1.0, progress=False, keep_flow=True)
    assert len(tab) == 16 and tab.flow.shape == (15, 96, 160, 2)
    # pairs 6→7, 7→8 pan; 8→9 is a cut (different texture crops) and must not qualify either
    assert list(np.flatnonzero(~tab.qualifies)) == [6, 7, 8]
    assert list(tab.selected_frames) == [0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14]
    assert tab.verdict(15) is None and tab.verdict(0) is True and tab.verdict(7) is False
    assert np.isnan(tab.means[-1]).all()
    assert 'frame' in repr(tab) and '—' in tab.show()

def test_retrieval_metrics_counts():
    m = retrieval_metrics([True, True, False, False, True, False], [True, False, False, True, True, False])
    assert (m['tp'], m['fp'], m['fn'], m['tn']) == (2, 1, 1, 2)
    assert m['accuracy'] == pytest.approx(4 / 6) and m['precision'] == pytest.approx(2 / 3)
    assert m['recall'] == pytest.approx(2 / 3)
    with pytest.raises(ValueError): retrieval_metrics([True], [True, False])

def test_camera_truth_from_speed():
    class F:
        def __init__(self, s): self.speed, self.image = s, np.zeros((4, 4, 3), np.uint8)
    class Seq(list): name = 'kitti_like'
    still, known = camera_still_truth(Seq([F(0.1), F(0.25), F(None), F(0.19999), F(3.0)]))
    np.testing.assert_array_equal(still, [True, False, False, True])
    np.testing.assert_array_equal(known, [True, True, False, True])
    with pytest.raises(ValueError, match='no camera ground truth'): camera_still_truth(Seq([F(None), F(None)]))

# ---------------------------------------------------------------- widget

def test_explorer_is_driven_by_attributes():
    fr = np.stack(pan_frames(3, 2))
    w = FlowExplorer(fr, backends=('dis', 'farneback'), tau_static=1.0)
    assert w.verdict is True and w.image.shape == (2 * 192, 2 * 160, 3) and w.image.dtype == np.uint8  # drawn at 2x
    w.frame.value = 3                                  # 3 → 4 pans by 3 px
    assert w.verdict is False
    np.testing.assert_allclose(w.means, 3, atol=0.3)
    assert tuple(w.image[0, 0]) == (230, 0, 0)         # corner box red: above tau
    w.tau.value = 3.5
    assert w.verdict is True and tuple(w.image[0, 0]) == (0, 200, 0)
    w.backend.value = 'farneback'
    assert w.verdict is True and w.backend.value == 'farneback'
    assert 'quasi-static' in w.label.value
    assert w.view.value[:4] == b'\x89PNG'


def test_import_leaves_torch_out():
    # DIS users and pseudo-label worker processes should not pay for torch/torchvision (seconds to import); RAFT
    # imports them when it is built. Checked in a fresh interpreter, where nothing else has imported torch yet.
    import subprocess, sys
    code = ("import sys, mrdino.flow, mrdino.pseudolabels; "
            "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'
    code = "import sys; from mrdino.raft import SmurfCorrBlock; print(SmurfCorrBlock.__mro__[1].__module__)"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == 'torchvision.models.optical_flow.raft'
