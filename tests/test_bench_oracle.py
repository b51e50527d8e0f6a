"""The oracle slot selection of bench/stage2_oracle.py, on a hand-made canvas whose answer is worked out below."""
import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location('bench_stage2_oracle', Path(__file__).resolve().parent.parent / 'bench' / 'stage2_oracle.py')
oracle = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(oracle)


def test_oracle_lambdas():
    C = 3                                                  # 2 windows × 3 slots; channel = window * 3 + slot
    lab = np.zeros((4, 8), int)
    lab[0:2, 0:4] = 0                                      # w0 s0: 8 px, exactly GT object 1
    lab[2:4, 0:2] = 1                                      # w0 s1: left half of object 2
    lab[2:4, 2:4] = 2                                      # w0 s2: right half of object 2
    lab[:, 4:8] = 3                                        # w1 s0: 16 px, 3 of them on object 3; w1 s1, s2 draw nothing
    g = np.zeros((4, 8), int)
    g[0:2, 0:4] = 1; g[2:4, 0:4] = 2; g[0, 4:7] = 3
    mostly, iou = oracle.oracle_lambdas(lab, C, g, (2, 3))
    # s0: all on object 1, IoU 1 → both keep it; s1, s2: all on object 2 but IoU 4/8 = 0.5 (not > 0.5) → only
    # "mostly" keeps them; w1 s0: 3/16 on an object → neither; empty slots → neither
    np.testing.assert_array_equal(mostly, [[1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(iou, [[1, 0, 0], [0, 0, 0]])
