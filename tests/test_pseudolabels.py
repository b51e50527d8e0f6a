"""mrdino.instances.instances_from_flow against an independent, straightforward transcription of the reference
(tests/oracle_pseudolabels.py: full-frame erosion/Sobel per component, hdbscan.HDBSCAN on every pixel), on synthetic flows
whose right answer is known by construction."""
import numpy as np
import pytest
import hdbscan
import joblib

from mrdino.instances import InstanceConfig, instance_steps, instances_from_flow, hdbscan_labels, ari

import oracle_pseudolabels as oracle


def straightforward(flow, **kw):
    with joblib.parallel_config(backend='sequential'):   # same chunks as hdbscan's default, no worker processes
        return oracle.straightforward_instances(flow, **kw)


def canvas(H, W, noise, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(0, noise, (H, W, 2)).astype(np.float32), np.zeros((H, W), np.int32)


def paint(flow, ids, k, r0, r1, c0, c1, u, v, expand=0.0, rot=0.0):
    "Object k on rows r0:r1, cols c0:c1 with flow (u, v) + expand·(p - centre) + rot·perp(p - centre)."
    yy, xx = np.mgrid[r0:r1, c0:c1]
    dy, dx = yy - (r0 + r1) / 2, xx - (c0 + c1) / 2
    flow[r0:r1, c0:c1, 0] += u + expand * dx - rot * dy
    flow[r0:r1, c0:c1, 1] += v + expand * dy + rot * dx
    ids[r0:r1, c0:c1] = k


def owners(inst, ids, k): return set(np.unique(inst[ids == k]).tolist()) - {0}


def test_touching_objects_moving_differently_split():
    flow, ids = canvas(120, 260, 0.25, 0)
    paint(flow, ids, 1, 30, 90, 20, 120, 7, 0)          # meets object 2 along a vertical boundary
    paint(flow, ids, 2, 34, 94, 120, 220, -5, 1)
    got = instances_from_flow(flow)
    np.testing.assert_array_equal(got, straightforward(flow))
    assert owners(got, ids, 1) and owners(got, ids, 2)
    assert not owners(got, ids, 1) & owners(got, ids, 2)       # no instance spans both
    assert got[ids == 0].max() == 0


def test_rigid_object_is_one_instance():
    flow, ids = canvas(120, 260, 0.2, 1)
    paint(flow, ids, 1, 20, 100, 40, 200, 5, -1, expand=0.015, rot=0.01)   # rigid motion: smooth, no internal edge
    got = instances_from_flow(flow)
    np.testing.assert_array_equal(got, straightforward(flow))
    assert got.max() == 1 and (got[ids == 1] == 1).mean() > 0.99


def test_tiny_objects_dropped_and_small_frames_empty():
    flow, ids = canvas(100, 200, 0.2, 2)
    paint(flow, ids, 1, 10, 19, 10, 21, 6, 0)            # 99 px < 100
    paint(flow, ids, 2, 50, 60, 100, 110, 6, 0)          # 100 px: kept
    got = instances_from_flow(flow)
    np.testing.assert_array_equal(got, straightforward(flow))
    assert got[ids == 1].max() == 0 and owners(got, ids, 2) == {1} and got.max() == 1
    empty = np.zeros((64, 96, 2), np.float32)
    np.testing.assert_array_equal(instances_from_flow(empty), np.zeros((64, 96), np.int32))
    one = empty.copy(); one[5, 5, 0] = 9                 # 1 px of 6144 < 0.05 %
    st = instance_steps(one)
    assert st.dropped and st.instances.max() == 0


@pytest.mark.parametrize('kw', [dict(), dict(edge='both_axes'), dict(border_eroded=True), dict(fg_decimals=None),
                                dict(min_samples=10, spatial_weight=20, direction_weight=40, tau_grad=12)])
def test_equals_straightforward_on_a_busy_frame(kw):
    "Objects at the image border, stacked vertically, walkers, blobs, noise: same map as the transcription."
    flow, ids = canvas(140, 300, 0.35, 3)
    paint(flow, ids, 1, 0, 50, 0, 90, 6, 0)              # touches top and left border
    paint(flow, ids, 2, 50, 110, 0, 90, -4, 0)           # stacked under it: a horizontal boundary
    paint(flow, ids, 3, 60, 130, 150, 175, 3, -3)
    paint(flow, ids, 4, 60, 130, 175, 200, -3, 3)
    paint(flow, ids, 5, 100, 140, 240, 300, 2.6, 0.3)    # slow, near the threshold, at the bottom-right corner
    flow[30:33, 250:253] += 8                            # a 9 px blob
    np.testing.assert_array_equal(instances_from_flow(flow, **kw), straightforward(flow, **kw))


def test_street_frame_scaled_config_equals_straightforward():
    from mrdino.worlds import make_street_video
    v = make_street_video(seed=5, n_frames=3)
    cfg = InstanceConfig().scaled(126 / 376)
    kw = {k: getattr(cfg, k) for k in ('tau_fg', 'tau_grad', 'erosion_radius', 'min_cluster_size', 'min_samples',
                                       'direction_weight', 'min_region')}
    st = instance_steps(v.flow[0], cfg)
    assert st.split                                      # HDBSCAN is exercised
    np.testing.assert_array_equal(st.instances, straightforward(v.flow[0], **kw))


def test_ids_beyond_255_survive():
    flow = np.zeros((200, 400, 2), np.float32)
    for i in range(10):
        for j in range(30): flow[20 * i:20 * i + 10, 13 * j:13 * j + 10, 0] = 4     # 300 separate 10×10 movers
    got = instances_from_flow(flow)
    assert got.dtype == np.int32 and got.max() == 300 and len(np.unique(got)) == 301


def test_hdbscan_labels_equal_hdbscan_package():
    rng = np.random.default_rng(7)
    for trial in range(12):
        n = int(rng.integers(100, 900)); k = int(rng.integers(1, 5))
        X = rng.normal(0, 5, (k, 3))[rng.integers(0, k, n)] + rng.normal(0, 1, (n, 3))
        if trial % 2: X = np.round(X * 2) / 2                       # many exact ties
        mcs, ms = int(rng.choice([3, 10, 30])), (None if trial % 3 else int(rng.integers(1, 15)))
        np.testing.assert_array_equal(hdbscan_labels(X, mcs, ms), hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=ms).fit_predict(X))


def test_fast_mode_agrees_with_exact():
    flow = oracle.toy_kitti_flow(2, 0.3)
    ex = instance_steps(flow)
    fa = instance_steps(flow, InstanceConfig(mode='fast'))
    assert ex.split and ari(ex.instances, fa.instances) >= 0.98


def test_border_erosion_modes():
    "A 12-row strip along the top border with a motion boundary: only scikit-image >= 0.23 semantics see it."
    flow, ids = canvas(60, 200, 0.1, 4)
    paint(flow, ids, 1, 0, 12, 20, 100, 7, 0)
    paint(flow, ids, 2, 0, 12, 100, 180, -5, 0)
    got = {be: instance_steps(flow, InstanceConfig(border_eroded=be)) for be in (False, True)}
    for be, st in got.items():
        np.testing.assert_array_equal(st.instances, straightforward(flow, border_eroded=be))
    assert got[False].split and not got[True].split      # outside-the-image pixels do / do not erode the strip
    assert got[True].instances.max() == 1
