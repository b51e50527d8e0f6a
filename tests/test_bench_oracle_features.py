"""The ground-truth feature table of bench/oracle_features.py, on a hand-made frame whose patches are worked out below."""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

_spec = importlib.util.spec_from_file_location('bench_oracle_features', Path(__file__).resolve().parent.parent / 'bench' / 'oracle_features.py')
bench = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(bench)


class _Video:
    kinds = ['car', 'pedestrian']
    def __init__(self):
        rng = np.random.default_rng(0)
        gt = np.zeros((126, 420), np.int32)
        gt[0:14, 0:28] = 1                      # a car filling patches (0, 0) and (0, 1) of the window at x = 0
        gt[14:28, 14:21] = 2                    # a pedestrian on the left half of patch (1, 1)
        self.frame = SimpleNamespace(image=rng.integers(0, 256, (126, 420, 3), dtype=np.uint8), gt=gt)
    def __len__(self): return 1
    def __getitem__(self, t): return self.frame


def _feats(enc, crop):
    return enc(torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float() / 255)[0]


def test_kind_fractions_and_positions():
    v = _Video(); enc = bench.GroundTruthKindEncoder([v], scale=5.0)
    f = _feats(enc, v.frame.image[:, 0:126])                             # (81, 64)
    want = np.zeros((81, 4)); want[:, 0] = 5.0
    want[0] = want[1] = [0, 5, 0, 0]                                      # patches 0 and 1: all car
    want[10] = [2.5, 0, 2.5, 0]                                           # patch (1, 1): 7 of 14 columns pedestrian
    np.testing.assert_allclose(f[:, :4].numpy(), want, atol=1e-6)
    np.testing.assert_allclose(f[:, 4:].numpy(), bench.sincos_pos_grid(9, 60)[0].numpy())
    # mirrored crop: the car is in the last two patches of row 0
    fm = _feats(enc, v.frame.image[:, 0:126][:, ::-1])
    assert fm[7, 1] == fm[8, 1] == 5.0 and fm[0, 1] == 0.0
    # first evaluation window (canvas padded by 42 px): the car covers columns 42..69, patches 3 and 4 of row 0
    padded = np.pad(v.frame.image, ((0, 0), (42, 42), (0, 0)))[:, 0:126]
    fp = _feats(enc, padded)
    assert fp[3, 1] == fp[4, 1] == 5.0 and fp[2, 1] == fp[5, 1] == 0.0


def test_unknown_crop_is_an_error():
    v = _Video(); enc = bench.GroundTruthKindEncoder([v])
    with pytest.raises(KeyError, match='not in the ground-truth table'):
        _feats(enc, v.frame.image[:, 1:127])                              # x = 1 is no crop of the layout
