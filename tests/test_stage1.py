"""Stage 1: exact resume after a kill, and the matching/loss against a brute-force reference."""
import itertools
from dataclasses import replace
import numpy as np, torch, pytest
from mrdino.dinosaur import Dinosaur, DinosaurConfig
from mrdino.stage1 import (Stage1Config, train_stage1, stage1_loss, upsample_masks, encode_windows)

def _data(n=6, crop=126, seed=0):
    rng = np.random.default_rng(seed)
    wins = rng.integers(0, 256, (n, crop, crop, 3), dtype=np.uint8)
    labs = np.zeros((n, crop, crop), np.int32)
    for i in range(n):
        for k in range(1 + i % 3):
            y, x = rng.integers(0, crop - 30, 2); labs[i, y:y + 30, x:x + 30] = k + 1
    return wins, labs

def _model():
    torch.manual_seed(0)
    return Dinosaur(DinosaurConfig.preset('synthetic', n_slots=4, decoder_hidden=32))

def test_killed_run_resumes_to_identical_weights(tmp_path):
    wins, labs = _data()
    cfg = Stage1Config.preset('synthetic', epochs=3, batch_size=4, lr=1e-3)
    a = _model(); feats = encode_windows(a, wins)
    train_stage1(a, wins, labs, cfg, tmp_path / 'full', device='cpu', progress=False, feats=feats)
    b = _model()
    train_stage1(b, wins, labs, cfg, tmp_path / 'killed', device='cpu', progress=False, feats=feats, stop_after=1)
    c = _model()                                          # a fresh process: new model object, same run folder
    res = train_stage1(c, wins, labs, cfg, tmp_path / 'killed', device='cpu', progress=False, feats=feats)
    assert res['epoch'] == 3
    for k, v in a.state_dict().items(): assert torch.equal(v, c.state_dict()[k]), k

def _brute_loss(masks, labels):
    "Independent reference: enumerate every injective assignment, loops over pixels in numpy float64."
    tot, n = 0.0, 0
    for m, lab in zip(masks.double().numpy(), labels):
        ids = [i for i in np.unique(lab) if i != 0]
        if not ids: continue
        P = [(lab == i).astype(float).ravel() for i in ids]
        M = m.reshape(len(m), -1)
        def bce(k, s):
            lm, l1 = np.maximum(np.log(M[k]), -100), np.maximum(np.log(1 - M[k]), -100)
            return -(P[s] * lm + (1 - P[s]) * l1).mean()
        best = min(itertools.permutations(range(len(M)), len(P)), key=lambda ks: sum(bce(k, s) for s, k in enumerate(ks)))
        for s, k in enumerate(best):
            mm, r = np.clip(M[k], 1e-6, 1 - 1e-6), P[s].mean()
            tot += (-(2 - r) * P[s] * np.log(mm) - (1 - P[s]) * np.log(1 - mm)).mean()
        n += 1
    return tot / n

def test_stage1_loss_matches_brute_force():
    g = torch.Generator().manual_seed(3)
    masks = torch.softmax(torch.randn(3, 4, 16, generator=g) * 3, 1)          # (B, K, P) on a 4x4 grid
    up = upsample_masks(masks, (8, 8))
    labels = [np.zeros((8, 8), int) for _ in range(3)]
    labels[0][:4, :4] = 2; labels[0][5:, 5:] = 9
    labels[2][2:6, 1:3] = 1; labels[2][0, :] = 4; labels[2][7, 7] = 5
    loss, n = stage1_loss(up, labels)
    assert n == 2                                                              # image 1 has no pseudo mask
    assert loss.item() == pytest.approx(_brute_loss(up, labels), rel=1e-5)
