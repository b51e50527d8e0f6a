"""The drop loss's margin on parked recall (issue #23), slow: the main job on the default world, training seed 0,
every step at its default length (a demo run: minutes on one core).

The drop loss takes out of `L_bg` the slots that are ≥ 0.99 cosine-similar to a matched slot, so it may only spare
slots that look like the moving objects, never push an object's slot off: with it, parked recall must not be lower than
without it. The two rows share the base model and every step; only the head's loss differs. On the default world the
measured margin is 0.0 points (42.7 both; see the results page for why the drop loss has little to act on there), so
this guards the sign of the margin, not its size.

Skipped unless MRDINO_TEST_FLAGS contains 'slow', e.g.
`MRDINO_TEST_FLAGS=slow OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/test_drop_loss_slow.py`."""
import os

import pytest

from mrdino.pipeline import MainJob

pytestmark = pytest.mark.skipif('slow' not in os.environ.get('MRDINO_TEST_FLAGS', ''), reason="slow: set MRDINO_TEST_FLAGS=slow")


def test_drop_loss_margin_on_parked_recall(tmp_path):
    job = MainJob(out_dir=str(tmp_path / 'run'), seed=0, progress=False)          # the default world
    res = job.evaluate()
    s2, nd = res['stage2'], res['no_drop_loss']
    assert s2['recall_parked'] >= nd['recall_parked'], (s2['recall_parked'], nd['recall_parked'])
    assert s2['recall_parked'] > 0                                              # parked instances are found at all
