"""Hostile use of the jobs (issue cases 2, 8, 11, 15, 18): a bad parameter or empty data is one line and leaves nothing
written; a failed evaluation leaves the previous results; a full disk names the file. Inputs are built here."""
import builtins, errno, json, os, sys
from pathlib import Path

import numpy as np
import pytest

from mrdino.readers import write_png

sys.path.insert(0, str(Path(__file__).parent))
from test_dinosaur_train import TINY, frames   # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


class PapermillStarted(Exception):
    "Raised by the stand-in for papermill: the job got past its checks."


@pytest.fixture
def no_papermill(monkeypatch):
    "papermill replaced by a recorder that stops at once (a real run takes minutes); returns the calls."
    import papermill as pm
    calls = []
    def start(nb, out, parameters=None, **kw): calls.append(parameters); raise PapermillStarted(out)
    monkeypatch.setattr(pm, 'execute_notebook', start)
    return calls


def _cli(argv, capsys):
    "(exit status, stderr) of `mrdino ARGV` run in this process."
    from mrdino.cli import main
    try: rc = main(argv)
    except SystemExit as e: rc = e.code
    return rc, capsys.readouterr().err


def _one_line(rc, err, msg):
    assert rc == 2 and msg in err, err
    assert err.count('\n') == 1 and 'Traceback' not in err, err


def _write_frames(folder, n, h=28, w=84):
    "`n` PNG frames (no annotations) in `folder`."
    for t in range(n): write_png(Path(folder) / f'{t:06d}.png', np.full((h, w, 3), 40 * t % 255, np.uint8))


# ---- case 2: a failed evaluation leaves the previous results; only mrdino's own overlays are replaced ----

def _maps():
    gt = np.zeros((4, 6), np.int32); gt[1:3, 1:3] = 1
    return gt.copy(), gt


def test_failed_evaluation_keeps_previous_results_and_user_files(tmp_path):
    from mrdino.metrics import evaluate_predictions
    pred, gt = _maps()
    out = tmp_path / 'ev'
    evaluate_predictions([pred, pred], [gt, gt], 'generic', out, names=['a', 'b'], n_overlays=2)
    (out / 'overlays' / 'my_figure.png').write_bytes(b'a figure of the user')
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob('*') if p.is_file()}
    # a 4x6 prediction is not the KITTI canvas: the evaluation fails while scoring (the canvas-size error)
    with pytest.raises(ValueError, match='image c: kitti: prediction is 4x6'):
        evaluate_predictions([pred], [gt], 'kitti', out, names=['c'], n_overlays=1)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob('*') if p.is_file()} == before   # nothing touched
    evaluate_predictions([pred], [gt], 'generic', out, names=['d'], n_overlays=1)
    assert sorted(p.name for p in (out / 'overlays').iterdir()) == ['d.png', 'my_figure.png']    # a, b were mrdino's
    assert json.loads((out / 'metrics.json').read_text())['overlays'] == ['d.png']


def test_evaluation_record_cannot_remove_files_outside_its_overlays(tmp_path):
    from mrdino.metrics import evaluate_predictions
    pred, gt = _maps()
    out = tmp_path / 'ev'; out.mkdir()
    (tmp_path / 'precious.png').write_bytes(b'x')
    (out / 'metrics.json').write_text(json.dumps(dict(overlays=['../../precious.png', 'x.txt'])))   # a crafted record
    (out / 'x.txt').write_text('kept')
    evaluate_predictions([pred], [gt], 'generic', out, names=['a'], n_overlays=1)
    assert (tmp_path / 'precious.png').exists() and (out / 'x.txt').exists()


# ---- case 8: empty training or evaluation data is refused before anything is written ----

def test_main_job_refuses_empty_data(tmp_path):
    from mrdino.pipeline import MainJob
    run = tmp_path / 'run'
    _write_frames(tmp_path / 'plain' / 'seq', 3)                          # frames without ground truth
    _write_frames(tmp_path / 'single' / 'seq', 1)                         # no pair of frames to compute flow on
    for kw, err, msg in [(dict(eval_data='synthetic-eval:0'), ValueError, r"eval_data='synthetic-eval:0' has no videos"),
                         (dict(data='synthetic:0'), ValueError, r"data='synthetic:0' has no videos"),
                         (dict(eval_data=str(tmp_path / 'plain')), ValueError, r"eval_data=.*plain.*no ground-truth instance maps"),
                         (dict(data=str(tmp_path / 'single')), ValueError, r"data=.*single.*no sequence of two or more frames")]:
        with pytest.raises(err, match=msg): MainJob(out_dir=str(run), progress=False, **kw)
        assert not run.exists(), kw                                        # refused before anything was written
    empty = tmp_path / 'empty'; empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"eval_data=.*empty.*no images"): MainJob(out_dir=str(run), eval_data=str(empty))
    assert not run.exists()


def test_demo_with_empty_evaluation_data_is_one_line(tmp_path, capsys, no_papermill):
    rc, err = _cli(['demo', '--out', str(tmp_path / 'demo'), '-p', 'eval_data', 'synthetic-eval:0'], capsys)
    _one_line(rc, err, "eval_data='synthetic-eval:0' has no videos")
    assert no_papermill == [] and not (tmp_path / 'demo').exists()


def test_evaluate_without_annotated_frames_writes_nothing(tmp_path, capsys):
    from mrdino.dinosaur import DinosaurConfig, train_dinosaur
    run = tmp_path / 'run'
    train_dinosaur(DinosaurConfig.preset('synthetic', steps=1, ckpt_every=1, **TINY), frames(), run, progress=False)
    _write_frames(tmp_path / 'plain' / 'seq', 2, 42, 126)
    rc, err = _cli(['evaluate', str(run), str(tmp_path / 'plain'), '--out', str(tmp_path / 'ev')], capsys)
    _one_line(rc, err, 'no annotated frames')
    assert not (tmp_path / 'ev').exists()


# ---- case 11: --scale and InstanceConfig.scaled refuse absurd factors ----

def test_pseudolabel_scale_out_of_range_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_frames(tmp_path / 'SRC' / 'seq', 2)
    for bad in ('1e308', 'inf', '0.001', '100'):                           # 'inf': (allowed: a finite number > 0); else 0.05 to 20
        rc, err = _cli(['pseudolabel', 'SRC', 'OUT', '--preset', 'synthetic', '--scale', bad], capsys)
        assert rc == 2 and 'Traceback' not in err, err                   # argparse's usage, then its one error line
        assert err.splitlines()[-1].startswith(f"mrdino pseudolabel: error: argument --scale: {bad} is out of range (allowed: ")
    assert not (tmp_path / 'OUT').exists()


def test_instance_config_scaled_refuses_absurd_factors():
    from mrdino.cli import SCALE_RANGE
    from mrdino.instances import InstanceConfig
    assert tuple(SCALE_RANGE) == tuple(InstanceConfig.SCALE_RANGE)         # the CLI's --help copy of the range
    for bad in (1e308, float('inf'), float('nan'), 0, -0.5, 1e-9, True, '2'):
        with pytest.raises(ValueError, match='out of range'): InstanceConfig().scaled(bad)
    c = InstanceConfig().scaled(2.0)                                       # a sane factor: lengths x2, areas x4
    assert (c.tau_fg, c.erosion_radius, c.min_region) == (5.0, 20, 400)


# ---- case 15: out_dir is --out ----

def test_demo_out_dir_parameter_is_one_line(tmp_path, capsys, monkeypatch, no_papermill):
    monkeypatch.chdir(tmp_path)
    rc, err = _cli(['demo', '-p', 'out_dir', 'X'], capsys)
    _one_line(rc, err, 'out_dir is the output folder, given by --out')
    assert list(tmp_path.iterdir()) == [] and no_papermill == []         # neither runs/demo nor X


# ---- case 18: parameters checked before papermill starts; repeated names refused; a full disk names the file ----

@pytest.mark.parametrize('param, msg', [
    (['seed', '-1'], "seed=-1: must be an integer >= 0"),
    (['preset', 'kiti'], "unknown preset 'kiti'"),
    (['world', 'moon'], "world='moon'"),
    (['device', 'gpu'], "device='gpu'"),
    (['data', '/nonexistent'], "data='/nonexistent' does not exist"),
    (['eval_every', '0'], "eval_every=0: must be an integer >= 1"),
])
def test_demo_bad_parameter_is_one_line_before_papermill(tmp_path, capsys, no_papermill, param, msg):
    rc, err = _cli(['demo', '--out', str(tmp_path / 'demo'), '-p', *param], capsys)
    _one_line(rc, err, msg)
    assert no_papermill == [] and not (tmp_path / 'demo').exists()       # no main.ipynb, no folder


def test_demo_repeated_parameter_is_refused(tmp_path, capsys, no_papermill):
    rc, err = _cli(['demo', '--out', str(tmp_path / 'demo'), '-p', 'seed', '1', '-p', 'seed', '2'], capsys)
    _one_line(rc, err, 'seed given more than once')
    assert no_papermill == [] and not (tmp_path / 'demo').exists()


def test_demo_good_parameters_reach_papermill(tmp_path, no_papermill):
    from mrdino.cli import run_demo
    with pytest.raises(PapermillStarted): run_demo(tmp_path / 'demo', seed=3, eval_every=2)
    assert no_papermill == [dict(out_dir=str((tmp_path / 'demo').resolve()), seed=3, eval_every=2)]


def test_demo_parameter_names_are_the_notebook_parameters():
    # run_demo checks names against MainJob's fields: they must be what the notebook's parameters cell declares
    import ast
    from mrdino.pipeline import MainJob
    nb = json.loads((Path(__file__).parent.parent / 'nbs' / '05_stage2.ipynb').read_text())
    cell = next(''.join(c['source']) for c in nb['cells'] if 'parameters' in c['metadata'].get('tags', []))
    names = {t.id for s in ast.parse(cell).body if isinstance(s, ast.Assign) for t in s.targets}
    assert names == set(MainJob.__dataclass_fields__) - {'progress'}


def test_demo_step_failure_in_the_notebook_is_one_line(tmp_path, capsys, monkeypatch):
    import papermill as pm
    def fail(nb, out, **kw):
        raise pm.PapermillExecutionError(4, 4, 'job.pseudo_labels()', 'OSError',
                                         "[Errno 28] No space left on device: '/runs/demo/pseudolabels/done.json'", [])
    monkeypatch.setattr(pm, 'execute_notebook', fail)
    rc, err = _cli(['demo', '--out', str(tmp_path / 'demo')], capsys)
    _one_line(rc, err, "No space left on device: '/runs/demo/pseudolabels/done.json'")
    assert str(tmp_path / 'demo' / 'main.ipynb') in err                   # where the full traceback is


class _FullDisk:
    "A file opened for writing on a full disk: every write fails with ENOSPC."
    def __init__(self, path, mode='r', *a, **kw): self.f = builtins.open(path, mode, *a, **kw)
    def __enter__(self): return self
    def __exit__(self, *exc): self.f.close()
    def write(self, b): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_names_the_file_being_written(tmp_path, monkeypatch):
    import mrdino.data
    from mrdino.data import atomic_write
    from mrdino.pipeline import MainJob
    monkeypatch.setattr(mrdino.data, 'open', _FullDisk, raising=False)   # atomic_write's open (the builtin elsewhere)
    with pytest.raises(OSError, match=r"No space left on device: '.*results\.json'") as e:
        atomic_write(tmp_path / 'results.json', '{}')
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / 'results.json')
    assert list(tmp_path.iterdir()) == []                                  # neither the file nor its temporary
    job = MainJob(out_dir=str(tmp_path / 'run'), progress=False)           # a step of the main job records done.json
    with pytest.raises(OSError, match=r"No space left on device: '.*probe/done\.json'"): job._step('probe', {}, lambda d: {})
