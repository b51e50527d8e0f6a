"""The release's evaluation path (issue #13): its window merger re-implemented here from its description, on one-hot
masks, against `merge_window_slots(mode='reference')`; `mrdino evaluate` end to end on a saved random reference
checkpoint over a tiny KITTI-2015-layout fixture."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mrdino.presets import PRESETS
from mrdino.windows import WindowLayout, merge_window_slots
from mrdino.cli import main

from test_reference_ckpt import ENC, TINY, hub_state_dict, ref_state_dict, save_ckpt

pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


def release_merge(labels, feats, lefts, crop, n_win, C, thr=0.2):
    """The release's MergeWindows for windows in one row: one-hot masks over n_win*C channels; per window, the channels
    1..C-1 present in its first / last visible column; adjacent pairs in order; a channel c is compared using feature
    c - 1 of its window (cosine over the flattened feature, +1e-8 on the norms); a merge adds the higher channel's mask
    to the lower one's and zeroes it; merged channels are skipped. Returns the argmax label map."""
    H, W = labels.shape
    m = torch.nn.functional.one_hot(torch.as_tensor(labels), n_win * C).permute(2, 0, 1).float()   # (nC, H, W)
    edges = []
    for w, x0 in enumerate(lefts):
        xa, xb = max(x0, 0), min(x0 + crop, W)
        e = dict(left=set(), right=set())
        for c in range(w * C + 1, (w + 1) * C):
            if (m[c, :, xa] == 1).any(): e['left'].add(c)
            if (m[c, :, xb - 1] == 1).any(): e['right'].add(c)
        edges.append(e)
    pairs = [(i, j) if lefts[i] < lefts[j] else (j, i) for i in range(n_win) for j in range(i + 1, n_win) if abs(lefts[i] - lefts[j]) == crop]
    f = torch.as_tensor(feats).reshape(n_win, feats.shape[1], -1).float()
    merged = set()
    for wi, wj in pairs:
        li = [c for c in edges[wi]['right'] if c not in merged]
        lj = [c for c in edges[wj]['left'] if c not in merged]
        for ci in li:
            if ci in merged or ci % C == 0: continue
            for cj in lj:
                if cj in merged or cj % C == 0: continue
                a, b = f[wi, ci - wi * C - 1], f[wj, cj - wj * C - 1]
                if float(((a / (a.norm() + 1e-8)) * (b / (b.norm() + 1e-8))).sum()) > thr:
                    keep, rem = min(ci, cj), max(ci, cj)
                    m[keep] += m[rem]; m[rem] = 0; merged.add(rem)
    return m.argmax(0).numpy()


@pytest.mark.parametrize('n_bg', [0, 1])
def test_reference_merge_equals_release_merger(n_bg):
    rng = np.random.default_rng(0)
    crop, n_win, K, P, D = 6, 4, 5, 4, 3
    lefts = [-2, 4, 10, 16]                                    # KITTI-like: the first and last windows start/end in padding
    lay = WindowLayout((6, 20), crop, [(0, x) for x in lefts], (0, 2))
    C = n_bg + K
    differs = 0
    for trial in range(40):
        dirs = rng.normal(size=(3, P * D))                    # few directions: many similar pairs
        feats = (dirs[rng.integers(0, 3, (n_win, K))] + 0.3 * rng.normal(size=(n_win, K, P * D))).astype(np.float32)
        if n_bg: feats = feats[..., :D]                       # with a head the release compares raw slots
        lab = np.zeros((6, 20), np.int64)
        for w, x0 in enumerate(lefts):                        # blocky random channels inside each window
            xa, xb = max(x0, 0), min(x0 + crop, 20)
            blocks = rng.integers(0, C, (3, 3)).repeat(2, 0).repeat(2, 1)
            lab[:, xa:xb] = blocks[:, xa - x0:xb - x0] + w * C
        ours = merge_window_slots(lab, feats, lay, 0.2, n_bg=n_bg, mode='reference')[0]
        np.testing.assert_array_equal(ours, release_merge(lab, feats, lefts, crop, n_win, C))
        differs += not np.array_equal(ours, merge_window_slots(lab, feats, lay, 0.2, n_bg=n_bg)[0])
    # without a head the modes differ on most of these cases; with a head (channel 0 = background) they agree
    assert (differs > 20) if n_bg == 0 else differs == 0


def kitti2015_fixture(root, n=2, seed=0):
    "training/image_2/*_10.png (375x1242 RGB) and training/instance/*_10.png (uint16 class*256 + id) with cars."
    rng = np.random.default_rng(seed)
    for d in ('image_2', 'instance'): (root / 'training' / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = (rng.random((375, 1242, 3)) * 60 + 80).astype(np.uint8)
        inst = np.zeros((375, 1242), np.uint16)
        for j in range(3):
            y, x = rng.integers(150, 300), rng.integers(50, 1100)
            img[y:y + 60, x:x + 120] = rng.integers(0, 255, 3)
            inst[y:y + 60, x:x + 120] = 26 * 256 + j + 1
        inst[:40, :200] = 7 * 256                              # road (class 7): background for KITTI
        cv2.imwrite(str(root / 'training' / 'image_2' / f'{i:06d}_10.png'), img[..., ::-1])
        cv2.imwrite(str(root / 'training' / 'instance' / f'{i:06d}_10.png'), inst)
    return root


def test_cli_evaluate_reference_ckpt_on_kitti2015(tmp_path, monkeypatch, capsys):
    # the kitti preset (378-px windows, 15 slots, 27x27 patches) with a tiny ViT instead of ViT-B/14 (speed)
    monkeypatch.setitem(PRESETS['kitti'], 'dinosaur', dict(PRESETS['kitti']['dinosaur'], encoder='vit_small_patch14_dinov2', encoder_arch=TINY))
    data = kitti2015_fixture(tmp_path / 'kitti_2015')
    enc = hub_state_dict()
    sd = ref_state_dict(patches=27 * 27)
    ck = save_ckpt(tmp_path / 'kitti_mr_stage2.ckpt', {**sd, **{ENC + k: v for k, v in enc.items()}})
    rc = main(['evaluate', str(ck), str(data), '--protocol', 'kitti', '--out', str(tmp_path / 'eval'), '--overlays', '1'])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert 'reference checkpoint kitti_mr_stage2.ckpt (MR-DINOSAUR, its stage-2 head): 15 slots x 8, 378-px windows' in out
    m = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
    assert m['n_images'] == 2 and set(m['metrics']) == {'f1_50', 'ap_50', 'ar_50', 'all_ari', 'fg_ari'}
    assert m['counts']['n_gt'] == 6 and m['counts']['n_pred'] > 0     # 3 cars per image; the road (class 7) is background
    assert all(0 <= m['metrics'][k] <= 1 for k in ('f1_50', 'ap_50', 'ar_50')) and all(-1 <= m['metrics'][k] <= 1 for k in ('all_ari', 'fg_ari'))
    # a checkpoint without its encoder needs --encoder-weights; without one the command says so (exit 2)
    ck2 = save_ckpt(tmp_path / 'kitti_dinosaur.ckpt', ref_state_dict(patches=27 * 27, head=False))
    assert main(['evaluate', str(ck2), str(data), '--protocol', 'kitti', '--out', str(tmp_path / 'e2')]) == 2
    assert '--encoder-weights' in capsys.readouterr().err
    torch.save(enc, tmp_path / 'dinov2_tiny_pretrain.pth')
    rc = main(['evaluate', str(ck2), str(data), '--protocol', 'kitti', '--out', str(tmp_path / 'e3'),
               '--encoder-weights', str(tmp_path / 'dinov2_tiny_pretrain.pth'), '--overlays', '0'])
    out = capsys.readouterr().out
    assert rc == 0 and 'DINOSAUR / stage 1, no head' in out and 'dinov2_tiny_pretrain.pth' in out
    assert json.loads((tmp_path / 'e3' / 'metrics.json').read_text())['n_images'] == 2


def test_predict_with_a_reference_ckpt_on_the_kitti_canvas(tmp_path, monkeypatch):
    # `mrdino predict RUN.ckpt VIDEO OUT --resize kitti` segments with the release's input preparation, and a run
    # folder written before that (no 'pixels' record) is not taken for a finished run of it
    from mrdino.predict import predict
    monkeypatch.setitem(PRESETS['kitti'], 'dinosaur', dict(PRESETS['kitti']['dinosaur'], encoder='vit_small_patch14_dinov2', encoder_arch=TINY))
    ck = save_ckpt(tmp_path / 'kitti_mr_stage2.ckpt', {**ref_state_dict(patches=27 * 27), **{ENC + k: v for k, v in hub_state_dict().items()}})
    frames = tmp_path / 'frames'; frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2): cv2.imwrite(str(frames / f'{i:06d}.png'), rng.integers(0, 255, (375, 1242, 3), dtype=np.uint8))
    rec = predict(str(ck), str(frames), tmp_path / 'out', resize='kitti', overlays=False, progress=False)
    assert rec['status'] == 'done' and rec['settings']['pixels'] == 'reference'
    rj = tmp_path / 'out' / 'run.json'
    old = json.loads(rj.read_text()); del old['settings']['pixels']; rj.write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r'other settings \(differing: pixels\)'):
        predict(str(ck), str(frames), tmp_path / 'out', resize='kitti', overlays=False, progress=False)
