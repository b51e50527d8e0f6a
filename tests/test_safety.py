"""Issue #17: run folders never run code, reuse checks the inputs, bad input fails loudly (inputs built here)."""
import json, os, pickle, sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mrdino.dinosaur import DinosaurConfig, find_checkpoint, load_state, train_dinosaur

sys.path.insert(0, str(Path(__file__).parent))
from test_dinosaur_train import TINY, frames   # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


class _Evil:
    "Unpickling this object runs `touch <marker>`."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (os.system, (f"touch {self.marker}",))


def _evil_state(path, marker, zip_format=True):
    "A state.pt that runs a shell command when loaded with pickle."
    obj = dict(step=3, opt=_Evil(marker), gen=None)
    if zip_format: torch.save(obj, path)
    else: Path(path).write_bytes(pickle.dumps(obj))


@pytest.mark.parametrize('zip_format', [True, False])
def test_load_state_refuses_pickle(tmp_path, zip_format):
    marker = tmp_path / 'pwned'
    _evil_state(tmp_path / 'state.pt', marker, zip_format)
    with pytest.raises(ValueError, match='state.pt.*pickle'): load_state(tmp_path / 'state.pt')
    assert not marker.exists()


def _tiny(steps=6, **kw): return DinosaurConfig.preset('synthetic', steps=steps, ckpt_every=3, **{**TINY, **kw})


def test_train_resume_refuses_crafted_state(tmp_path):
    run = tmp_path / 'run'
    train_dinosaur(_tiny(3), frames(), run, progress=False)
    ck = find_checkpoint(run)
    marker = tmp_path / 'pwned'
    _evil_state(ck / 'state.pt', marker)
    with pytest.raises(ValueError, match=str(ck / 'state.pt')): train_dinosaur(_tiny(6), frames(), run, progress=False)
    assert not marker.exists()


def test_stage1_stage2_resume_refuse_crafted_state(tmp_path):
    from mrdino.dinosaur import Dinosaur
    from mrdino.stage1 import Stage1Config, train_stage1
    from mrdino.stage2 import Stage2Config, train_stage2
    torch.manual_seed(0)
    model = Dinosaur(_tiny())
    w = frames(4)[:, :, :42].copy()
    lab = np.zeros((4, 42, 42), np.int32); lab[:, 5:20, 5:20] = 1
    marker = tmp_path / 'pwned'
    r1 = train_stage1(model, w, lab, Stage1Config(epochs=1, batch_size=2), tmp_path / 's1', progress=False)
    _evil_state(Path(r1['checkpoint']) / 'state.pt', marker)
    with pytest.raises(ValueError, match='pickle'):
        train_stage1(model, w, lab, Stage1Config(epochs=2, batch_size=2), tmp_path / 's1', progress=False)
    r2 = train_stage2(model, w, lab, Stage2Config(epochs=1, batch_size=2, hidden=8), tmp_path / 's2', progress=False)
    _evil_state(Path(r2['checkpoint']) / 'state.pt', marker)
    with pytest.raises(ValueError, match='pickle'):
        train_stage2(model, w, lab, Stage2Config(epochs=2, batch_size=2, hidden=8), tmp_path / 's2', progress=False)
    assert not marker.exists()
