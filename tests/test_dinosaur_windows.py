"""Windowed inference: KITTI / TRI-PD / arbitrary layouts, joining on the canvas, the reference's border merger."""
import numpy as np
import pytest

from mrdino.dinosaur import Dinosaur, DinosaurConfig
from mrdino.windows import WindowLayout, merge_window_slots, predict_windows, window_layout

TINY = dict(encoder_weights='random', encoder_arch=dict(embed_dim=16, depth=1, num_heads=2), n_slots=3, decoder_hidden=16)


pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


def test_kitti_windows_end_to_end():
    model = Dinosaur(DinosaurConfig.preset('kitti', **TINY)).eval()
    img = np.random.default_rng(0).integers(0, 255, (375, 1242, 3), dtype=np.uint8)
    p = predict_windows(model, img, seed=3)
    assert p.layout.size == (378, 1260) and p.layout.origins == [(0, -126), (0, 252), (0, 630), (0, 1008)]
    assert p.labels.shape == (375, 1242) and p.canvas_labels.shape == (378, 1260)
    assert p.masks.shape == (4, 3, 378, 378) and p.slots.shape == (4, 3, 32)
    np.testing.assert_allclose(p.masks.sum(1), 1, atol=1e-5)        # bilinear upsampling keeps a partition of unity
    raw = predict_windows(model, img, seed=3, merge_thr=None).canvas_labels
    for w, x0 in enumerate((-126, 252, 630, 1008)):                  # each canvas column belongs to one window
        cols = raw[:, max(x0, 0):min(x0 + 378, 1260)]
        assert set(np.unique(cols)) <= set(range(3 * w, 3 * w + 3))
        # the label is the argmax of that window's upsampled masks
        crop = p.masks[w][:, :, max(x0, 0) - x0:min(x0 + 378, 1260) - x0]
        np.testing.assert_array_equal(cols, crop.argmax(0) + 3 * w)
    assert np.array_equal(p.canvas_labels, p.parent[raw])
    q = predict_windows(model, img, seed=3)
    assert np.array_equal(q.labels, p.labels) and np.array_equal(q.slots, p.slots)    # seeded: repeatable
    assert not np.array_equal(predict_windows(model, img, seed=4).slots, p.slots)


def test_tripd_and_arbitrary_layouts():
    lay = window_layout(480, 968, 490, (490, 980))
    assert lay.origins == [(0, 0), (0, 490)] and lay.pad == (0, 0)
    lay = window_layout(100, 1000, 126)                                # wide, aspect kept: 126 x 1260 -> 10 windows
    assert lay.size == (126, 1260) and len(lay.origins) == 10 and lay.pad == (0, 0)
    lay = window_layout(300, 200, 126)                                 # portrait: windows stacked vertically
    assert lay.size == (189, 126) and lay.origins == [(-31, 0), (95, 0)]
    model = Dinosaur(DinosaurConfig.preset('synthetic', **TINY)).eval()
    p = predict_windows(model, np.zeros((300, 200, 3), np.uint8))
    assert p.labels.shape == (300, 200) and p.masks.shape == (2, 3, 126, 126)


def _unit(*v): v = np.array(v, float); return v / np.linalg.norm(v)


def test_merge_is_one_greedy_pass_like_the_reference():
    # three 2x2 windows in a row; one object spans all three: channel 1 (w0), 4 (w1), 7 (w2)
    lay = WindowLayout((2, 6), 2, [(0, 0), (0, 2), (0, 4)], (0, 0))
    lab = np.array([[0, 1, 4, 4, 7, 8],
                    [0, 1, 4, 4, 7, 6]])
    e = np.eye(3)
    slots = np.stack([[e[2], e[0], e[1]], [e[1], e[0], e[2]], [e[0], e[2], e[1]]])   # (3 windows, 3 slots, 3)
    merged, parent = merge_window_slots(lab, slots, lay)
    # pair (w0, w1): 4 joins 1 (same slot direction). Pair (w1, w2): 4 is already merged, so 7 is not visited
    # through it, and 5 (same direction as 7) does not touch the border -> 7 stays apart: one pass, no chaining.
    assert parent[4] == 1 and parent[7] == 7
    assert merged.tolist() == [[0, 1, 1, 1, 7, 8], [0, 1, 1, 1, 7, 6]]
    # a channel on the left absorbs every similar channel touching the border on the right
    lab2 = np.array([[0, 1, 3, 3], [0, 1, 4, 4]])
    lay2 = WindowLayout((2, 4), 2, [(0, 0), (0, 2)], (0, 0))
    s2 = np.stack([[e[2], e[0], e[1]], [e[0], e[0], e[1]]])
    assert merge_window_slots(lab2, s2, lay2)[1].tolist() == [0, 1, 2, 1, 1, 5]
    # threshold is strict: cosine exactly 0.2 does not merge, just above does
    c = 0.2
    s3 = np.stack([[e[2], e[0], e[1]], [_unit(c, np.sqrt(1 - c * c), 0)] * 3])
    assert merge_window_slots(lab2, s3, lay2, thr=0.2)[1][3] == 3
    assert merge_window_slots(lab2, s3, lay2, thr=0.199)[1][3] == 1


def test_merge_vertical_and_background_channels():
    lay = WindowLayout((4, 2), 2, [(0, 0), (2, 0)], (0, 0))          # two windows stacked
    lab = np.array([[0, 0], [1, 1], [3, 3], [2, 3]])                  # with n_bg=1: channels 0,2 background; 1,3 slots
    slots = np.array([[[1.0, 0.0]], [[0.9, 0.1]]])                    # (2 windows, 1 slot, 2)
    assert merge_window_slots(lab, slots, lay, n_bg=1)[1].tolist() == [0, 1, 2, 1]
    lab_bg = np.array([[0, 0], [0, 0], [2, 2], [2, 3]])               # only background channels on the border
    assert merge_window_slots(lab_bg, slots, lay, n_bg=1)[1].tolist() == [0, 1, 2, 3]
