"Tests for mrdino.metrics: ARI vs sklearn, hand-computed F1/P/R, streaming and 2-process gloo accumulation, protocols."
import csv, json, os, socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from sklearn.metrics import adjusted_rand_score

from mrdino.metrics import (MaskMetrics, METRIC_KEYS, blob_labels, contingency, dense_ids, evaluate_masks,
                            evaluate_predictions, greedy_match, image_scores, nearest_resize,
                            score_pair, segment_iou)


def random_pair(rng, shape=(31, 47)):
    "A plausible (pred, gt) pair: blob GT objects on background, blob prediction partly aligned with them."
    H, W = shape
    n_obj = int(rng.integers(0, 7))
    g = blob_labels(rng, shape, n_obj + 3, smooth=0.3)
    g = np.where(g < n_obj, g + 1, 0).astype(np.int32)                 # ids 1..n_obj, rest background
    p = blob_labels(rng, shape, int(rng.integers(1, 12)))
    keep = rng.random(n_obj + 1) < 0.6                                 # copy some GT objects, shifted a little
    for k in np.flatnonzero(keep[1:]) + 1:
        dy, dx = rng.integers(-2, 3, 2)
        p[np.roll(g, (dy, dx), (0, 1)) == k] = 50 + k
    return p.astype(np.int32), g


# ---------------------------------------------------------------- ARI vs sklearn
def test_ari_equals_sklearn_random():
    rng = np.random.default_rng(0)
    n_fg = n_all = 0
    for i in range(60):
        if i % 3 == 0:   # iid labels: a harder, very different distribution
            g = rng.integers(0, rng.integers(3, 7), (13, 17)); p = rng.integers(0, rng.integers(2, 9), (13, 17))
        else:
            p, g = random_pair(rng)
        s = image_scores(p, g, min_gt_objects=0)
        n_classes_all, n_pred = len(np.unique(g)), len(np.unique(p))
        if not (n_classes_all == n_pred == 1):             # sklearn's 1.0 special case (see test below)
            assert s["all_ari"] == pytest.approx(adjusted_rand_score(g.ravel(), p.ravel()), abs=1e-9)
            n_all += 1
        fg = g > 0
        if fg.sum() >= 2 and not (len(np.unique(g[fg])) == len(np.unique(p[fg])) == 1):
            assert s["fg_ari"] == pytest.approx(adjusted_rand_score(g[fg], p[fg]), abs=1e-9)
            n_fg += 1
    assert n_fg >= 30 and n_all >= 50


def test_ari_degenerate_is_zero_like_reference():
    g = np.array([[0, 3, 3, 3]]); p = np.array([[1, 2, 2, 2]])
    assert adjusted_rand_score(g[g > 0], p[g > 0]) == 1.0           # sklearn: perfect agreement
    assert image_scores(p, g, min_gt_objects=0)["fg_ari"] == 0.0     # reference formula: 0 / 1e-12


# ---------------------------------------------------------------- hand-computed F1 / P / R
def test_hand_cases():
    # 1) IoU exactly 0.5: GT object 8 px (rows 0-1, cols 0-3); prediction covers it plus 8 background px.
    g1 = np.zeros((4, 8), int); g1[:2, :4] = 1
    p1 = np.zeros((4, 8), int); p1[:2, :] = 5                   # 16 px, intersection 8, union 16
    # 2) duplicates of one GT: 10-px object covered by a 6-px and a 4-px segment -> IoU 0.6 (TP) and 0.4 (FP)
    g2 = np.zeros((2, 10), int); g2[:, :5] = 7
    p2 = np.zeros((2, 10), int); p2[:, :3] = 1; p2[:, 3:5] = 2
    # 3) image without GT objects, three predicted segments -> three FPs
    g3 = np.zeros((3, 3), int); p3 = np.array([[1, 1, 2], [1, 2, 2], [3, 3, 3]])
    # 4) empty prediction of an image with two GT objects
    g4 = np.zeros((3, 4), int); g4[0, :2] = 1; g4[2, 2:] = 2; p4 = np.zeros((3, 4), int)
    # 5) perfect prediction of two objects (TP 2), with a background segment 0 that is not counted
    g5 = np.array([[1, 1, 0], [2, 2, 0]]); p5 = np.array([[4, 4, 0], [9, 9, 0]])
    per = [image_scores(p, g) for p, g in [(p1, g1), (p2, g2), (p3, g3), (p4, g4), (p5, g5)]]
    assert [(s["tp"], s["n_pred"], s["n_gt"]) for s in per] == [(0, 1, 1), (1, 2, 1), (0, 3, 0), (0, 0, 2), (2, 2, 2)]
    m = evaluate_masks([p1, p2, p3, p4, p5], [g1, g2, g3, g4, g5])
    P, R = 3 / 8, 3 / 6                                          # TP 3, #pred 8, #GT 6
    assert m["ap_50"] == pytest.approx(P, abs=1e-15) and m["ar_50"] == pytest.approx(R, abs=1e-15)
    assert m["f1_50"] == pytest.approx(2 * P * R / (P + R), abs=1e-15)   # = 3/7
    assert m["f1_50"] == pytest.approx(3 / 7, abs=1e-15)
    # ARI only on images 4 and 5 (>= 2 GT objects): image 4 all-ARI 0 (one predicted cluster), fg-ARI 0
    # (degenerate: one predicted cluster against two GT clusters gives index == expected);
    # image 5: fg-ARI 1 (exact match on fg); all-ARI 1 (the same partition up to renaming)
    assert m["fg_ari"] == pytest.approx(0.5, abs=1e-12) and m["all_ari"] == pytest.approx(0.5, abs=1e-12)
    # 5 split 5/5: two IoUs of exactly 0.5 -> no TP
    p2b = np.zeros((2, 10), int); p2b[0, :5] = 1; p2b[1, :5] = 2
    assert image_scores(p2b, g2)["tp"] == 0
    # baseline mode counts predicted id 0: images 1, 2, 4 and 5 each gain a background segment (IoU 0 with every GT) -> 12
    mb = evaluate_masks([p1, p2, p3, p4, p5], [g1, g2, g3, g4, g5], count_background=True)
    assert mb["ap_50"] == pytest.approx(3 / 12, abs=1e-15)
    # nothing predicted, nothing to find: zeros, no exception
    assert evaluate_masks([np.zeros((2, 2), int)], [np.zeros((2, 2), int)])["f1_50"] == 0.0


def test_duplicates_in_reference_greedy():
    iou = np.array([[0.7, 0.0], [0.7, 0.0], [0.2, 0.51]])      # the same mask twice, then a clean hit
    assert list(greedy_match(iou)) == [0, -1, 1]
    assert list(greedy_match(np.array([[0.5, 0.5]]))) == [-1]


def test_vectorised_tp_equals_reference_greedy_any_order():
    rng = np.random.default_rng(1)
    total = 0
    for _ in range(40):
        p, g = random_pair(rng)
        for cb in (False, True):
            pids, gids, t = contingency(p, g)
            rows = np.ones(len(pids), bool) if cb else pids != 0
            iou = segment_iou(t)[np.ix_(rows, gids != 0)]
            want = image_scores(p, g, count_background=cb)["tp"]
            for order in (np.arange(len(iou)), rng.permutation(len(iou))):
                assert (greedy_match(iou[order]) >= 0).sum() == want
            total += want
    assert total > 40


# ---------------------------------------------------------------- streaming + DDP
def _dataset(n=24, seed=5):
    rng = np.random.default_rng(seed)
    pairs = [random_pair(rng) for _ in range(n)]
    n_obj = [len(np.unique(g)) - (g == 0).any() + int(i % 4 == 0) for i, (_, g) in enumerate(pairs)]  # some "lost" objects
    return [p for p, _ in pairs], [g for _, g in pairs], n_obj


def test_accumulator_equals_batch():
    preds, gts, n_obj = _dataset()
    for cb in (False, True):
        for counts in (None, n_obj):
            acc = MaskMetrics(count_background=cb)
            for i, (p, g) in enumerate(zip(preds, gts)): acc.update(p, g, None if counts is None else counts[i])
            want = evaluate_masks(preds, gts, counts, count_background=cb)
            got = acc.compute()
            for k in METRIC_KEYS: assert got[k] == pytest.approx(want[k], abs=1e-12), k
    a, b = MaskMetrics(), MaskMetrics()
    for i, (p, g) in enumerate(zip(preds, gts)): (a if i % 2 else b).update(p, g)
    assert (a + b).compute() == pytest.approx(evaluate_masks(preds, gts), abs=1e-12)


def _ddp_worker(rank, world, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        preds, gts, n_obj = _dataset()
        acc = MaskMetrics()
        for i in range(rank, len(preds), world): acc.update(preds[i], gts[i], n_obj[i])
        acc.sync()
        with pytest.raises(RuntimeError): acc.sync()
        torch.save(dict(counts=acc.counts(), metrics=acc.compute()), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def test_gloo_two_processes_equal_one(tmp_path):
    preds, gts, n_obj = _dataset()
    one = MaskMetrics()
    for p, g, k in zip(preds, gts, n_obj): one.update(p, g, k)
    out = str(tmp_path / "res")
    mp.spawn(_ddp_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    for rank in (0, 1):                                       # every rank holds the global totals
        r = torch.load(f"{out}.{rank}")
        c1 = one.counts()
        assert {k: v for k, v in r["counts"].items() if not k.endswith("_sum")} == {k: v for k, v in c1.items() if not k.endswith("_sum")}
        for k in METRIC_KEYS: assert r["metrics"][k] == pytest.approx(one.compute()[k], abs=1e-12)


# ---------------------------------------------------------------- resize and protocols
def test_nearest_resize_matches_torch_and_keeps_ids():
    rng = np.random.default_rng(2)
    for _ in range(60):
        h, w, oh, ow = (int(v) for v in rng.integers(1, 400, 4))
        ramp = np.arange(h * w, dtype=np.float32).reshape(h, w)
        for mode in ("nearest", "nearest-exact"):
            ref = F.interpolate(torch.from_numpy(ramp)[None, None], size=(oh, ow), mode=mode)[0, 0].numpy()
            assert np.array_equal(nearest_resize(ramp, (oh, ow), mode), ref), (h, w, oh, ow, mode)
    ids = (np.arange(20, dtype=np.int64).reshape(4, 5) * 3 + (1 << 24) + 1)
    assert np.array_equal(np.unique(nearest_resize(ids, (8, 10))), np.unique(ids))
    as_float = F.interpolate(torch.from_numpy(ids).float()[None, None], size=(8, 10), mode="nearest")[0, 0].long().numpy()
    assert not np.array_equal(np.unique(as_float), np.unique(ids))       # why we gather indices instead


def test_kitti_pipeline_equals_reference_style_onehot():
    "score_pair vs an independent re-implementation of the reference chain on float32 one-hot channels."
    rng = np.random.default_rng(3)
    H, W = 375, 1242
    inst = np.zeros((H, W), np.uint16)
    for k in range(6):                                                   # objects and stuff of several classes
        y, x = rng.integers(0, H - 40), rng.integers(0, W - 80)
        cls = [26, 24, 33, 7, 34, 26][k]
        inst[y:y + rng.integers(3, 40), x:x + rng.integers(3, 80)] = cls * 256 + k
    pred = blob_labels(rng, (378, 1260), 12)
    sp = score_pair(pred, inst, "kitti")
    # reference style: one channel per object id, F.interpolate on float32, argmax back to ids
    obj = np.where(np.isin(inst // 256, np.arange(24, 34)), inst, 0).astype(np.int64)
    ids = np.unique(obj)
    oh = torch.from_numpy((obj[None] == ids[:, None, None]).astype(np.float32))[None]
    oh = F.interpolate(oh, size=(378, 1260), mode="nearest-exact")
    oh = F.interpolate(oh, size=(95, 315), mode="nearest")
    g_ref = ids[oh[0].argmax(0).numpy()]
    ph = torch.from_numpy((pred[None] == np.arange(12)[:, None, None]).astype(np.float32))[None]
    p_ref = F.interpolate(ph, size=(95, 315), mode="nearest")[0].argmax(0).numpy()
    assert np.array_equal(sp.gt, g_ref) and np.array_equal(sp.pred, p_ref)
    assert sp.n_gt_objects == len(ids) - 1 == 4
    assert np.array_equal(score_pair(np.pad(pred, ((0, 0), (126, 126))), inst, "kitti").pred, sp.pred)


def test_tri_pd_small_objects_and_sizes():
    g = np.zeros((480, 968), np.int32)
    g[0:22, 0:22] = 3          # 484 px -> background
    g[100:125, 300:320] = 4    # 500 px -> kept
    sp = score_pair(np.ones((490, 980), np.int32), g, "tri_pd")
    assert sp.gt.shape == sp.pred.shape == (123, 245) and sp.n_gt_objects == 1
    assert set(np.unique(sp.gt)) == {0, 4}
    with pytest.raises(ValueError, match="joined canvas"):
        score_pair(np.ones((480, 968), np.int32), g, "tri_pd")


def test_dense_ids_paths_agree():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 50, (20, 30))
    ids, inv = dense_ids(x)
    u, ui = np.unique(x, return_inverse=True)
    assert np.array_equal(ids, u) and np.array_equal(inv, ui.ravel())
    y = x.astype(np.int64) * (1 << 40) - 7                               # np.unique path
    ids2, inv2 = dense_ids(y)
    assert np.array_equal(inv2, inv) and np.array_equal(ids2, u.astype(np.int64) * (1 << 40) - 7)


def test_evaluate_predictions_writes_consistent_files(tmp_path):
    rng = np.random.default_rng(6)
    preds, gts, names = [], [], []
    for i in range(5):
        g = np.zeros((480, 968), np.int32)
        for k in range(1, 4):
            y, x = rng.integers(0, 400), rng.integers(0, 880)
            g[y:y + 60, x:x + 80] = k
        preds.append(nearest_resize(g, (490, 980), "nearest-exact") * (i % 2))   # odd images: perfect; even: empty
        gts.append(g); names.append(f"frame_{i}")
    imgs = [rng.integers(0, 255, (480, 968, 3), dtype=np.uint8) for _ in range(5)]
    res = evaluate_predictions(preds, gts, "tri_pd", tmp_path, names=names, images=imgs, n_overlays=2)
    pairs = [score_pair(p, g, "tri_pd") for p, g in zip(preds, gts)]
    want = evaluate_masks([s.pred for s in pairs], [s.gt for s in pairs], [s.n_gt_objects for s in pairs])
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    for k in METRIC_KEYS: assert on_disk["metrics"][k] == pytest.approx(want[k], abs=1e-12) == res["metrics"][k]
    assert on_disk["metrics"]["ap_50"] == 1.0 and on_disk["metrics"]["ar_50"] < 1.0
    rows = list(csv.DictReader(open(tmp_path / "per_image.csv")))
    assert [r["name"] for r in rows] == names
    assert [int(r["tp"]) for r in rows] == [image_scores(s.pred, s.gt)["tp"] for s in pairs]
    assert sorted(os.listdir(tmp_path / "overlays")) == ["frame_0.png", "frame_1.png"]
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
