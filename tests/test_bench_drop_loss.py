"""bench/drop_loss.py's two measures on hand-made windows and slots whose answers are worked out below."""
import importlib.util
import sys
from pathlib import Path

import numpy as np

_bench = Path(__file__).resolve().parent.parent / 'bench'
sys.path.insert(0, str(_bench))                             # the script imports its neighbour stage2_oracle
_spec = importlib.util.spec_from_file_location('bench_drop_loss', _bench / 'drop_loss.py')
drop = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(drop)


def test_slot_kinds():
    masks = np.zeros((4, 4, 4))                             # 4 slots on a 4×4 window
    masks[0, :, :2] = 1                                     # slot 0 wins the left half
    masks[1, :2, 2:] = 1                                    # slot 1 the top right quarter
    masks[2, 2:, 2:] = 1                                    # slot 2 the bottom right quarter; slot 3 wins nothing
    objs = np.zeros((3, 4, 4)); objs[0] = 1                 # channel 0 background, objects 1 (moving) and 2 (parked)
    objs[1, :, 0] = 1; objs[0, :, 0] = 0                    # object 1: the left column: 4 of slot 0's 8 px, background 4
    objs[1, 0, 1] = 1; objs[0, 0, 1] = 0                    # ... and one more: 5 of 8 → slot 0 is on object 1
    objs[2, 2:, 2:] = 1; objs[0, 2:, 2:] = 0                # object 2 fills slot 2's quarter
    kinds = drop.slot_kinds(masks, objs, parked=[False, True])
    assert list(kinds) == ['moving', 'background', 'parked', '']


def test_best_moving_similarity():
    # one window, 4 slots in 2-D: two moving slots at 0° and 60°, a parked one at 0° (cos 1 with the first moving
    # one), a background one at 90° (cos 0 with the first, cos 60°→30° = 0.866 with the second)
    a = np.deg2rad([0, 60, 0, 90])
    S = np.stack([np.cos(a), np.sin(a)], -1)[None] * np.array([1, 2, 3, 4])[None, :, None]   # lengths do not matter
    best = drop.best_moving_similarity(S, np.array([['moving', 'moving', 'parked', 'background']]))
    np.testing.assert_allclose(best, [[0.5, 0.5, 1.0, np.cos(np.deg2rad(30))]], atol=1e-6)   # a moving slot: not itself
    none = drop.best_moving_similarity(S, np.array([['parked', 'background', '', '']]))
    np.testing.assert_array_equal(none, -np.ones((1, 4)))   # no moving slot in the batch: nothing to be similar to
