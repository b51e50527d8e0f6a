"""The pseudo-labelling job: resumable (kill -9 or an exception part-way, then rerun → byte-identical outputs),
workers and shards give the same files, the source stays untouched, unreadable frames are reported."""
import csv, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest

from mrdino.worlds import make_street_video
from mrdino.readers import write_png
import mrdino.pseudolabels as pl
from mrdino.instances import InstanceConfig
from mrdino.pseudolabels import pseudolabel, read_instances

SEEDS, N_FRAMES = (3, 8, 11), 14
CFG = InstanceConfig(mode='fast').scaled(126 / 376)     # fast mode: the job's logic is under test here
KW = dict(tau_static=1.7, instances=CFG, progress=False)
JOB = f"""
import sys
from mrdino.worlds import make_street_video
from mrdino.instances import InstanceConfig
from mrdino.pseudolabels import pseudolabel
vids = [make_street_video(seed=s, n_frames={N_FRAMES}) for s in {SEEDS}]
pseudolabel(vids, sys.argv[1], tau_static=1.7, instances=InstanceConfig(mode='fast').scaled(126 / 376), progress=False)
"""


@pytest.fixture(scope='module')
def vids(): return [make_street_video(seed=s, n_frames=N_FRAMES) for s in SEEDS]


@pytest.fixture(scope='module')
def reference(vids, tmp_path_factory):
    "An uninterrupted run: {relative path: bytes} of every file it wrote."
    out = tmp_path_factory.mktemp('ref')
    res = pseudolabel(vids, out, **KW)
    return res, tree(out)


def tree(root):
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def test_reference_run_is_complete(reference, vids):
    res, files = reference
    h = res['out'].name
    assert {f'{h}/settings.json', f'{h}/index.csv'} <= set(files)
    rows = list(csv.DictReader(files[f'{h}/index.csv'].decode().splitlines()))
    assert len(rows) == len(SEEDS) * N_FRAMES
    lab = [r for r in rows if r['verdict'] == 'labelled']
    assert lab and set(f'{h}/{r["label"]}' for r in lab) == {k for k in files if '/labels/' in k}
    for r in lab[:3]:
        ids = read_instances(res['out'] / r['label'])
        assert ids.max() == int(r['instances']) and ids.dtype == np.int32
    # retrieval verdicts follow the camera: frames where the synthetic camera moves are never labelled
    for v in vids:
        for r in rows:
            if r['sequence'] == v.name and r['verdict'] == 'labelled': assert not v.camera_moving[int(r['frame'])]


def test_killed_job_resumes_to_identical_outputs(reference, tmp_path):
    out = tmp_path / 'killed'
    p = subprocess.Popen([sys.executable, '-c', JOB, str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    try:
        while not list(out.glob('*/labels/*/*.png')):
            assert p.poll() is None, f"job ended before writing a label: {p.stderr.read().decode()[-2000:]}"
            assert time.time() - t0 < 120, "no label file after 120 s"
            time.sleep(0.02)
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
    h = reference[0]['out'].name
    assert not (out / h / 'index.csv').exists(), "the job finished before it was killed: nothing was tested"
    partial = tree(out)
    assert any('/labels/' in k for k in partial)
    pseudolabel(make_vids(), out, **KW)                       # rerun: resumes
    assert tree(out) == reference[1]


def make_vids(): return [make_street_video(seed=s, n_frames=N_FRAMES) for s in SEEDS]


def test_exception_part_way_then_rerun_is_identical(reference, vids, tmp_path, monkeypatch):
    calls = {'n': 0}
    real = pl.instance_steps
    def flaky(*a, **k):
        calls['n'] += 1
        if calls['n'] == 9: raise RuntimeError("injected failure")
        return real(*a, **k)
    monkeypatch.setattr(pl, 'instance_steps', flaky)
    with pytest.raises(RuntimeError, match='injected'):
        pseudolabel(vids, tmp_path, **KW)
    assert 0 < len(list(tmp_path.glob('*/labels/*/*'))) and not list(tmp_path.glob('*/index.csv'))
    done_before = len(list(tmp_path.glob('*/records/*.jsonl')))
    monkeypatch.setattr(pl, 'instance_steps', real)
    again = pseudolabel(vids, tmp_path, **KW)
    assert again['sequences'] == len(SEEDS) - done_before >= 1   # finished sequences are skipped
    assert tree(tmp_path) == reference[1]


def test_workers_and_shards_write_the_same_files(reference, vids, tmp_path):
    pseudolabel(vids, tmp_path / 'w2', workers=2, **KW)
    assert tree(tmp_path / 'w2') == reference[1]
    a = pseudolabel(vids, tmp_path / 'sh', shard=(1, 2), **KW)
    assert a['sequences'] == 1                               # sequences j with j % 2 == 1: only the second
    b = pseudolabel(vids, tmp_path / 'sh', shard='0/2', **KW)
    assert b['sequences'] == 2
    assert tree(tmp_path / 'sh') == reference[1]
    with pytest.raises(ValueError, match='i/n'): pseudolabel(vids, tmp_path / 'x', shard='2', **KW)


def test_other_settings_never_overwrite(reference, vids, tmp_path):
    from dataclasses import replace
    r1 = pseudolabel(vids[:1], tmp_path, **KW)
    r2 = pseudolabel(vids[:1], tmp_path, **{**KW, 'instances': replace(CFG, tau_grad=30.0)})
    assert r1['out'] != r2['out'] and r1['out'].parent == r2['out'].parent == tmp_path


def write_folder(root, v, frames):
    for t in frames: write_png(root / 'seq' / f'{t:04d}.png', v.frames[t])


def test_source_untouched_unreadable_frames_reported(tmp_path):
    v = make_street_video(seed=3, n_frames=12)
    src = tmp_path / 'src'
    write_folder(src, v, range(12))
    (src / 'seq' / '0006.png').write_bytes(b'not a png')   # a truncated / broken frame
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in src.rglob('*') if p.is_file()}
    with pytest.raises(ValueError, match='inside the source'):
        pseudolabel(src, src / 'labels', **KW)
    res = pseudolabel(src, tmp_path / 'out', **KW)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in src.rglob('*') if p.is_file()}
    assert after == before                                  # nothing written, nothing touched in the source
    rows = list(csv.DictReader(open(res['out'] / 'index.csv')))
    bad = {int(r['frame']): r for r in rows if r['verdict'] == 'unreadable'}
    assert set(bad) == {5, 6} and all('0006.png' in r['note'] for r in bad.values())   # flows 5→6 and 6→7 missing
    assert res['skipped'] == 2 and len(rows) == 12
