"Quasi-static retrieval on synthetic street videos (default backend) against camera ground truth."
import numpy as np
import pytest

from mrdino.worlds import make_street_dataset
from mrdino.flow import (TAU_STATIC, corner_means, evaluate_retrieval, is_quasi_static, quasi_static_runs,
                         retrieval_metrics)

@pytest.fixture(scope='module')
def videos(): return make_street_dataset(n_videos=3, seed=0)

@pytest.fixture(scope='module')
def results(videos): return evaluate_retrieval(videos, 'dis', TAU_STATIC['synthetic'], progress=False)

def test_videos_have_both_camera_states(videos):
    moving = np.concatenate([v.camera_moving for v in videos])
    assert moving.any() and (~moving).any()

def test_retrieval_precision_and_recall(results):
    r = results['corner + run rule']
    assert r['accuracy'] >= 0.99 and r['precision'] >= 0.99 and r['recall'] >= 0.95, r

def test_flow_is_not_the_limit(videos, results):
    # the same rule on the exact flow: DIS verdicts must agree with it, and DIS accuracy must be as good
    still = np.concatenate([~v.camera_moving for v in videos])
    q = [is_quasi_static(corner_means(v.flow), TAU_STATIC['synthetic']) for v in videos]
    dis = np.concatenate([t.qualifies for t in results['tables']])
    assert np.mean(dis == np.concatenate(q)) >= 0.99
    exact = retrieval_metrics(np.concatenate([quasi_static_runs(x, 5) for x in q]), still)
    assert results['corner + run rule']['accuracy'] >= exact['accuracy'] - 0.01

def test_camera_motion_is_never_retrieved(videos, results):
    for v, t in zip(videos, results['tables']):
        assert not (t.qualifies & v.camera_moving).any(), v.name
