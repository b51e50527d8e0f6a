"""A run's identity does not depend on where its folder lies: `predict` records the model by its weights, so a main-job
folder copied or moved elsewhere predicts into the same OUT as before (reused, nothing rewritten), while other weights
are refused; a run.json of an older mrdino (the model recorded by its absolute path) is read where the model has not moved."""
import json, shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from mrdino.pipeline import resolve_model
from mrdino.predict import predict
from test_predict import tiny_job

ARGS = dict(max_frames=4, batch=2, variant='only_stage2', progress=False, overlays=False)

def _files(out:Path)->dict: return {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob('*') if p.is_file()}

@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('runs')
    job = tiny_job(root / 'here' / 'job')
    predict(job, 'synthetic:1', root / 'pred', **ARGS)
    return root, job

def test_a_moved_run_is_the_same_model(runs, capsys):
    root, job = runs
    before = _files(root / 'pred')
    moved = root / 'elsewhere' / 'job'; shutil.copytree(job, moved)
    rec = predict(moved, 'synthetic:1', root / 'pred', **ARGS)                   # refused before: "differing: model"
    assert 'nothing to do' in capsys.readouterr().out and _files(root / 'pred') == before
    text = (root / 'pred' / 'run.json').read_text() + (root / 'pred' / 'coco.json').read_text()
    assert str(root) not in text and rec['model'].startswith('only_stage2 from main job job: ')   # no absolute path recorded

def test_other_weights_are_refused(runs):
    root, job = runs
    other = root / 'other' / 'job'; shutil.copytree(job, other)
    for f in (other / 'only_stage2').rglob('head.safetensors'):
        sd = load_file(f); k = sorted(sd)[0]; sd[k] = sd[k] + 1; save_file(sd, f)
    with pytest.raises(ValueError, match=r'other settings \(differing: model\)'):
        predict(other, 'synthetic:1', root / 'pred', **ARGS)

def test_an_older_record_is_read_where_the_model_lies(runs, capsys):
    root, job = runs
    old = root / 'old'; shutil.copytree(root / 'pred', old)
    rj = json.loads((old / 'run.json').read_text())
    rj['settings']['model'] = resolve_model(job.resolve(), variant='only_stage2')[2]     # as an older mrdino recorded it: with the path
    (old / 'run.json').write_text(json.dumps(rj))
    predict(job, 'synthetic:1', old, **ARGS)
    assert 'nothing to do' in capsys.readouterr().out
    moved = root / 'moved' / 'job'; shutil.copytree(job, moved)
    with pytest.raises(ValueError, match='older mrdino, which recorded the model by its folder'):
        predict(moved, 'synthetic:1', old, **ARGS)
