"""The main job: the papermill notebook runs headless end to end (tiny settings), writes results.json with every
Tab. 3a row, and a rerun after an interruption reuses the finished steps."""
import json
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(data='synthetic:2', eval_data='synthetic-eval:1', baseline_steps=30, stage1_epochs=1, stage2_epochs=1,
            eval_every=30)
ROWS = ['dinosaur', 'stage1', 'stage2', 'only_stage2', 'no_drop_loss']
KEYS = ['f1_50', 'ap_50', 'ar_50', 'all_ari', 'fg_ari']

def test_papermill_main_job(tmp_path):
    import papermill as pm
    out = tmp_path / 'demo'
    pm.execute_notebook(str(ROOT / 'nbs' / '05_stage2.ipynb'), str(tmp_path / 'main.ipynb'), cwd=str(ROOT),
                        parameters=dict(out_dir=str(out), workers=2, **TINY),   # 2 videos, one per worker
                        progress_bar=False)
    res = json.loads((out / 'results.json').read_text())
    assert list(res) == ROWS
    for row in res.values():
        for k in KEYS: assert 0.0 <= row[k] <= 1.0, (k, row)
        assert row['frames'] == 2                                # frames 0 and 30 of the one 60-frame eval video
    nb = json.loads((tmp_path / 'main.ipynb').read_text())
    html = ''.join(''.join(o.get('data', {}).get('text/html', '')) for c in nb['cells'] for o in c.get('outputs', []))
    assert '<table' in html and '+ stage 2 (MR-DINOSAUR)' in html   # Tab. 3a was shown, as an HTML table

def test_interrupted_job_resumes_from_finished_steps(tmp_path):
    from mrdino.pipeline import MainJob
    job = MainJob(out_dir=str(tmp_path), progress=False, **TINY)
    job.pseudo_labels(); job.baseline()                          # then the process "dies"
    stamps = {s: (tmp_path / s / 'done.json').stat().st_mtime_ns for s in ['pseudolabels', 'dinosaur']}
    job2 = MainJob(out_dir=str(tmp_path), progress=False, workers=2, **TINY)   # other workers: same labels, reused
    res = job2.evaluate()
    assert list(res) == ROWS
    for s, t in stamps.items(): assert (tmp_path / s / 'done.json').stat().st_mtime_ns == t, f"{s} was redone"
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob('done.json')}
    assert MainJob(out_dir=str(tmp_path), progress=False, **TINY).evaluate() == res      # everything reused
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())

def test_bad_parameters_are_named():
    from mrdino.pipeline import MainJob
    with pytest.raises(ValueError, match='unknown preset'): MainJob(preset='kitty')
    with pytest.raises(ValueError, match='workers=0'): MainJob(workers=0)
    with pytest.raises(ValueError, match="world='moon'"): MainJob(world='moon')
    with pytest.raises(FileNotFoundError, match='data=.*/no/such/videos'): MainJob(data='/no/such/videos')
    with pytest.raises(ValueError, match='needs DINOv2 weights'): MainJob(preset='kitti', data='.', eval_data='.')
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'): MainJob(device='cuda')

def test_steps_run_on_the_presets_threads(tmp_path):
    # the synthetic preset's steps run on one torch thread (numbers independent of the machine's cores), whatever
    # the caller set; the caller's setting is back after each step, also after a step that fails
    import torch
    from mrdino.pipeline import MainJob
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        job = MainJob(out_dir=str(tmp_path / 'a'), progress=False, **TINY)
        assert job.threads == 1
        s = job._step('probe', {}, lambda d: {'inside': torch.get_num_threads()})
        assert (s['inside'], s['torch_threads'], torch.get_num_threads()) == (1, 1, 2)
        def boom(d): raise RuntimeError('step failed')
        with pytest.raises(RuntimeError, match='step failed'): job._step('boom', {}, boom)
        assert torch.get_num_threads() == 2
        job = MainJob(out_dir=str(tmp_path / 'b'), progress=False, threads=3, **TINY)   # asked for: used
        assert job._step('probe', {}, lambda d: {'inside': torch.get_num_threads()})['inside'] == 3
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(n)

def test_a_moved_run_reads_its_own_pseudo_labels(tmp_path):
    # done.json records absolute paths; a run folder moved elsewhere (its old place gone) still finds its labels
    import shutil
    from mrdino.pipeline import MainJob
    a, b = tmp_path / 'a', tmp_path / 'b'
    job = MainJob(out_dir=str(a), progress=False, **TINY)
    frames, labels = job.labelled_frames()
    shutil.move(str(a), str(b))
    moved = MainJob(out_dir=str(b), progress=False, **TINY)
    f2, l2 = moved.labelled_frames()
    assert len(f2) == len(frames) > 0 and all((x == y).all() for x, y in zip(l2, labels))
    assert not a.exists()

def test_a_reused_step_is_announced_once(tmp_path, capsys):
    # later steps ask for the steps they build on again (stage 1 for stage 2, ...): the log says "reusing" once per step
    from mrdino.pipeline import MainJob
    job = MainJob(out_dir=str(tmp_path / 'a'), progress=False, **TINY)
    runs = []
    for _ in range(3): job._step('probe', {'k': 1}, lambda d: runs.append(d) or {'x': 1})
    assert len(runs) == 1                                   # ran once, then reused twice
    assert capsys.readouterr().out.count('probe: reusing finished step') == 1
