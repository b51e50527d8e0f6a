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


# ---- 2. input identity: reuse only what was made from the same data ----

from mrdino.worlds import make_street_video   # noqa: E402
from mrdino.readers import write_png   # noqa: E402


def _write_seq(folder, seed, n, h=63, w=210):
    "A sequence of `n` synthetic frames as PNG files; returns the frames."
    v = make_street_video(seed, n_frames=n, height=h, width=w)
    for t in range(n): write_png(Path(folder) / f'{t:06d}.png', v.frames[t])
    return v.frames


def _records(root):
    (sub,) = [p for p in Path(root).iterdir() if p.is_dir()]
    import csv
    with open(sub / 'index.csv') as f: return sub, list(csv.DictReader(f))


def test_pseudolabel_other_data_into_same_out(tmp_path, capsys):
    from mrdino.cli import main
    _write_seq(tmp_path / 'A' / 'seq', 0, 10)
    _write_seq(tmp_path / 'B' / 'seq', 1, 7, h=42, w=140)               # same sequence name, other frames
    out = tmp_path / 'out'
    assert main(['pseudolabel', str(tmp_path / 'A'), str(out), '--preset', 'synthetic']) == 0
    assert len(_records(out)[1]) == 10
    assert main(['pseudolabel', str(tmp_path / 'B'), str(out), '--preset', 'synthetic']) == 0
    r = json.loads(capsys.readouterr().out.split('\n}\n')[-2] + '\n}')
    assert r['sequences'] == 1                                            # B's sequence was labelled, not skipped
    sub, rows = _records(out)
    assert len(rows) == 7                                                 # B has 7 frames
    from mrdino.pseudolabels import read_instances
    for row in rows:
        if row['label']: assert read_instances(sub / row['label']).shape == (42, 140)
    assert not [p for p in (sub / 'labels' / 'seq').iterdir() if int(p.stem) >= 7]   # none of A's maps left


def test_pseudolabel_fixed_bad_frame_is_relabelled(tmp_path):
    from mrdino.pseudolabels import pseudolabel
    fr = _write_seq(tmp_path / 'src' / 'seq', 0, 8)
    good = (tmp_path / 'src' / 'seq' / '000003.png').read_bytes()
    (tmp_path / 'src' / 'seq' / '000003.png').write_bytes(b'not a png')
    pseudolabel(tmp_path / 'src', tmp_path / 'out', tau_static=1.7, progress=False)
    assert [r['verdict'] for r in _records(tmp_path / 'out')[1]].count('unreadable') == 2   # frames 2 and 3 (pair 3→4 too)
    (tmp_path / 'src' / 'seq' / '000003.png').write_bytes(good)         # fixed as the error message advises
    r = pseudolabel(tmp_path / 'src', tmp_path / 'out', tau_static=1.7, progress=False)
    assert r['sequences'] == 1
    assert 'unreadable' not in [r['verdict'] for r in _records(tmp_path / 'out')[1]]


def test_train_dinosaur_refuses_other_data_in_same_folder(tmp_path):
    run = tmp_path / 'run'
    train_dinosaur(_tiny(3), frames(seed=0), run, progress=False)
    with pytest.raises(ValueError, match='other data.*new out_dir'): train_dinosaur(_tiny(6), frames(seed=1), run, progress=False)
    assert find_checkpoint(run).name == 'step_0000003'                  # nothing trained on the mix
    assert train_dinosaur(_tiny(6), frames(seed=0), run, progress=False)['step'] == 6   # the same data resumes


def test_main_job_new_data_relabels_and_redoes_steps(tmp_path):
    from mrdino.pipeline import MainJob
    data = tmp_path / 'data'
    _write_seq(data / 'seq', 0, 10)
    job = MainJob(data=str(data), eval_data='synthetic-eval:1', out_dir=str(tmp_path / 'run'), progress=False)
    job.pseudo_labels()
    import shutil
    shutil.rmtree(data); _write_seq(data / 'seq', 1, 10, h=84, w=280)   # new frames, other size, same path and name
    job = MainJob(data=str(data), eval_data='synthetic-eval:1', out_dir=str(tmp_path / 'run'), progress=False)
    frames_, labels = job.labelled_frames()
    for f, l in zip(frames_, labels): assert f.shape[:2] == l.shape == (84, 280)
    assert len(_records(tmp_path / 'run' / 'pseudolabels')[1]) == 10
    # a step whose folder was made from other inputs is removed and redone, never resumed
    seen = []
    def fn(d): seen.append(sorted(p.name for p in d.iterdir())); (d / 'ckpt').mkdir(exist_ok=True); return {}
    job._step('toy', dict(a=1), fn, inputs=dict(data='x'))
    job._step('toy', dict(a=1), fn, inputs=dict(data='y'))
    assert seen == [['inputs.json'], ['inputs.json']]                    # the second run did not see the first's ckpt/
    job._step('toy', dict(a=1), fn, inputs=dict(data='y'))
    assert len(seen) == 2                                                 # same settings and inputs: reused


# ---- 3. every parameter checked up front ----

@pytest.mark.parametrize('kw, msg', [
    (dict(eval_every=-1), r"eval_every=-1: must be an integer >= 1"),
    (dict(eval_every=0), r"eval_every=0: must be an integer >= 1"),
    (dict(baseline_steps=-5), r"baseline_steps=-5: must be an integer >= 0"),
    (dict(baseline_steps=float('nan')), r"baseline_steps=nan"),
    (dict(stage1_epochs=-1), r"stage1_epochs=-1"),
    (dict(stage2_epochs=2.5), r"stage2_epochs=2.5"),
    (dict(seed='abc'), r"seed='abc': must be an integer"),
    (dict(device='tpu'), r"device='tpu': 'tpu' is not a device \(allowed: cpu, cuda, cuda:N, auto\)"),
    (dict(flow_backend='diss'), r"flow_backend='diss'"),
    (dict(workers=0), r"workers=0"),
    (dict(progress='yes'), r"progress='yes'"),
    (dict(threads=-1), r"threads=-1: must be an integer >= 0"),
])
def test_main_job_rejects_bad_parameters(tmp_path, kw, msg):
    from mrdino.pipeline import MainJob
    with pytest.raises(ValueError, match=msg): MainJob(out_dir=str(tmp_path / 'run'), **kw)
    assert not (tmp_path / 'run').exists()                               # rejected before anything is written


def test_main_job_encoder_weights_must_be_a_weight_file(tmp_path):
    from mrdino.pipeline import MainJob
    txt = tmp_path / 'weights.pth'; txt.write_text('these are not weights\n')
    with pytest.raises(ValueError, match=r"encoder_weights=.*weights.pth.*is not a weight file"):
        MainJob(encoder_weights=str(txt), out_dir=str(tmp_path / 'run'))
    from safetensors.torch import save_file
    save_file({'x': torch.zeros(2)}, str(tmp_path / 'w.safetensors'))
    torch.save({'x': torch.zeros(2)}, tmp_path / 'w.pth')
    from mrdino.pipeline import _check_weight_file
    _check_weight_file('encoder_weights', str(tmp_path / 'w.safetensors')); _check_weight_file('encoder_weights', str(tmp_path / 'w.pth'))


def test_run_demo_rejects_misspelled_parameter(tmp_path):
    from mrdino.cli import run_demo
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) eval_evry: .*eval_every"): run_demo(tmp_path / 'demo', eval_evry=3)
    assert not (tmp_path / 'demo').exists()


def _cli(argv, capsys):
    "(exit status, stderr) of `mrdino ARGV`."
    from mrdino.cli import main
    try: rc = main(argv)
    except SystemExit as e: rc = e.code
    return rc, capsys.readouterr().err


@pytest.mark.parametrize('argv, msg', [
    (['train-dinosaur', '--out', 'OUT', '--preset', 'foo'], "argument --preset: invalid choice: 'foo'"),
    (['pseudolabel', 'SRC', 'OUT', '--preset', 'foo'], "argument --preset: invalid choice: 'foo'"),
    (['pseudolabel', 'SRC', 'OUT', '--scale', '0'], "argument --scale: 0 is out of range (allowed: a finite number > 0)"),
    (['train-dinosaur', '--out', 'OUT', '--batch-size', '0'], "argument --batch-size: 0 is out of range (allowed: >= 1)"),
    (['train-dinosaur', '--out', 'OUT', '--batch-size', '-4'], "argument --batch-size: -4 is out of range (allowed: >= 1)"),
    (['pseudolabel', 'SRC', 'OUT', '--tau-static', '-1'], "argument --tau-static: -1 is out of range"),
    (['pseudolabel', 'SRC', 'OUT', '--tau-static', 'nan'], "argument --tau-static: nan is out of range"),
    (['pseudolabel', 'SRC', 'OUT', '--workers', '0'], "argument --workers: 0 is out of range"),
    (['pseudolabel', 'SRC', 'OUT', '--shard', '4/4'], "argument --shard: '4/4' is not i/n"),
    (['evaluate', 'CK', 'DATA', '--out', 'OUT', '--every', '0'], "argument --every: 0 is out of range"),
    (['evaluate', 'CK', 'DATA', '--out', 'OUT', '--protocol', 'kity'], "argument --protocol: invalid choice"),
    (['train-dinosaur', '--out', 'OUT', '--device', 'tpu'], "argument --device: 'tpu' is not a device"),
    (['synth', 'OUT', '--frames', '1'], "argument --frames: 1 is out of range (allowed: >= 2)"),
    (['predict', 'SRC', 'synthetic:1', 'OUT', '--device', 'tpu'], "argument --device: 'tpu' is not a device"),
    (['predict', 'SRC', 'synthetic:1', 'OUT', '--layout', 'folders'], "argument --layout: invalid choice: 'folders'"),
    (['predict', 'SRC', 'synthetic:1', 'OUT', '--resize', 'kity'], "argument --resize: invalid choice: 'kity'"),
    (['predict', 'SRC', 'synthetic:1', 'OUT', '--encoder-weights', 'none.pth'], "argument --encoder-weights: 'none.pth' is not a file"),
    (['predict', 'SRC', 'synthetic:1', 'OUT', '--batch', '0'], "argument --batch: 0 is out of range (allowed: >= 1)"),
])
def test_cli_options_validated_up_front(tmp_path, capsys, monkeypatch, argv, msg):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'SRC').mkdir()
    rc, err = _cli(argv, capsys)
    assert rc == 2 and msg in err, err
    assert not (tmp_path / 'OUT').exists()                               # nothing made


def test_cli_device_cuda_without_cuda(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for argv in (['train-dinosaur', '--out', str(tmp_path / 'o'), '--device', 'cuda'],
                 ['evaluate', str(tmp_path), 'synthetic:1', '--device', 'cuda', '--out', str(tmp_path / 'o')]):
        rc, err = _cli(argv, capsys)
        assert rc == 2 and "argument --device: 'cuda': CUDA is not available here" in err
    assert not (tmp_path / 'o').exists()


def test_cli_every_option_has_help():
    import argparse
    from mrdino.cli import build_parser
    p = build_parser()
    subs = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {a.dest}" for name, sp in subs.choices.items() for a in sp._actions if not a.help]
    assert missing == []


def test_cli_choices_match_the_modules():
    from mrdino import cli, flow, metrics, worlds, presets
    assert set(cli.PRESETS) == set(presets.PRESETS) == set(flow.TAU_STATIC)
    assert tuple(cli.WORLDS) == tuple(worlds.WORLDS)
    assert tuple(cli.FLOW_BACKENDS) == tuple(flow.BACKENDS)
    assert set(cli.PROTOCOL_NAMES) == set(metrics.PROTOCOLS)


# ---- 4. bad input is detected, odd input is read correctly ----

import cv2   # noqa: E402
from mrdino.data import BadFrameError   # noqa: E402
from mrdino.readers import read_folder, read_rgb, read_source   # noqa: E402


def test_truncated_jpeg_is_a_bad_frame(tmp_path, capsys):
    v = make_street_video(0, n_frames=3, height=63, width=210)
    d = tmp_path / 'seq'; d.mkdir()
    for t in range(3):
        ok, buf = cv2.imencode('.jpg', v.frames[t][..., ::-1]); assert ok
        (d / f'{t}.jpg').write_bytes(buf.tobytes())
    full = (d / '1.jpg').read_bytes()
    (d / '1.jpg').write_bytes(full[:len(full) * 2 // 3])                 # cut: libjpeg fills the rest with grey, warns only
    with pytest.raises(BadFrameError, match=r'1\.jpg.*truncated'): read_rgb(d / '1.jpg')
    s = read_folder(tmp_path)[0]
    kept = [f.index for f in s.iter_frames(skip_bad=True)]
    assert kept == [0, 2] and [i for i, _ in s.skipped] == [1]
    from mrdino.cli import main
    assert main(['info', str(tmp_path), '--check']) == 1
    assert '1 bad' in capsys.readouterr().out
    (d / '1.png').write_bytes(cv2.imencode('.png', v.frames[1])[1].tobytes()[:-30])   # a PNG without its IEND chunk
    with pytest.raises(BadFrameError, match=r'1\.png'): read_rgb(d / '1.png')


def test_16bit_png_frames_are_read(tmp_path):
    rng = np.random.default_rng(0)
    rgb8 = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    rgb16 = rgb8.astype(np.uint16) * 257                                 # exact 8 → 16 bit scaling
    rgb16[0, 0] += 100                                                   # round(v / 257) stays the same value
    assert cv2.imwrite(str(tmp_path / 'a.png'), rgb16[..., ::-1])
    np.testing.assert_array_equal(read_rgb(tmp_path / 'a.png'), rgb8)
    gray = (np.arange(600, dtype=np.uint16).reshape(20, 30) * 100)
    assert cv2.imwrite(str(tmp_path / 'g.png'), gray)
    np.testing.assert_array_equal(read_rgb(tmp_path / 'g.png')[..., 0], np.round(gray / 257).astype(np.uint8))


def test_symlink_loop_gives_each_sequence_once(tmp_path):
    _write_seq(tmp_path / 'data' / 'seq', 0, 3)
    (tmp_path / 'data' / 'seq' / 'loop').symlink_to(tmp_path / 'data')   # data/seq/loop -> data
    (tmp_path / 'data' / 'again').symlink_to(tmp_path / 'data' / 'seq')  # the same folder under a second name
    seqs = read_folder(tmp_path / 'data')
    assert [s.name for s in seqs] == ['seq'] and len(seqs[0]) == 3


def test_frames_beside_a_video_are_not_ignored(tmp_path):
    fr = _write_seq(tmp_path / 'mix', 0, 4)
    vw = cv2.VideoWriter(str(tmp_path / 'mix' / 'clip.avi'), cv2.VideoWriter_fourcc(*'MJPG'), 10, (210, 63))
    for f in fr: vw.write(f[..., ::-1])
    vw.release()
    seqs = read_source(tmp_path / 'mix')
    assert sorted((s.name, len(s)) for s in seqs) == [('clip', 4), ('mix', 4)]


def test_synth_output_reads_back(tmp_path, capsys):
    from mrdino.cli import main
    out = tmp_path / 'syn'
    assert main(['synth', str(out), '--videos', '2', '--frames', '6', '--height', '42', '--width', '140', '--world', 'street']) == 0
    capsys.readouterr()
    seqs = read_source(out)
    assert [s.name for s in seqs] == ['street_000', 'street_001']
    v = make_street_video(0, n_frames=6, height=42, width=140)
    f = seqs[0][3]
    np.testing.assert_array_equal(f.image, v.frames[3])
    np.testing.assert_array_equal(f.gt, v.instances[3])                 # the 16-bit instance maps are the annotation
    assert main(['info', str(out), '--check']) == 0
    o = capsys.readouterr().out
    assert 'street_000: 6 frames, 140×42, annotated' in o and '2 sequences, 12 frames, 0 bad' in o
    from mrdino.pseudolabels import pseudolabel
    r = pseudolabel(out, tmp_path / 'pl', tau_static=1.7, progress=False)
    assert r['sequences'] == 2 and r['frames'] == 12


# ---- 5. storage: damaged checkpoints, full disks, leftovers of killed writers ----

def test_truncated_latest_checkpoint_falls_back(tmp_path, capsys):
    import warnings
    run = tmp_path / 'run'
    train_dinosaur(_tiny(6), frames(), run, progress=False)
    new = run / 'ckpt' / 'step_0000006' / 'model.safetensors'
    new.write_bytes(new.read_bytes()[:-100])                             # disk filled up mid-write (e.g. by another job)
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter('error')                                   # said in one log line, not a Python warning
        ck = find_checkpoint(run)
        assert ck.name == 'step_0000003'
        (line,) = [l for l in capsys.readouterr().out.splitlines() if str(new) in l]
        assert 'truncated' in line and line.endswith(f'using the newest intact checkpoint {ck}')
        from mrdino.dinosaur import load_dinosaur
        load_dinosaur(run)
        assert 'truncated' in capsys.readouterr().out
    import shutil
    shutil.copytree(run, tmp_path / 'copy')
    st = run / 'ckpt' / 'step_0000003' / 'state.pt'
    st.write_bytes(st.read_bytes()[:200])
    with pytest.raises(ValueError, match=r'no intact checkpoint.*step_0000006.*truncated.*step_0000003/state.pt'): find_checkpoint(run)
    r = train_dinosaur(_tiny(9), frames(), tmp_path / 'copy', progress=False)   # a training resume continues from the intact one
    out = capsys.readouterr().out
    assert r['step'] == 9 and 'resumed from' in out and 'step_0000003 at step 3' in out


def test_feature_cache_space_checked_and_allocated(tmp_path, monkeypatch):
    import shutil
    import mrdino.dinosaur as dm
    from mrdino.encoder import build_encoder
    from mrdino.dinosaur import FeatureCache, FrameSet, cache_views, feature_caches
    cfg = _tiny()
    enc = build_encoder(cfg)
    fs = FrameSet(frames(), cfg.resize, cfg.crop)
    views = cache_views(fs.size, cfg.crop, cfg.cache_stride, cfg.hflip)
    need = 6 * len(views) * enc.n_patches * enc.dim * 2
    real = shutil.disk_usage
    monkeypatch.setattr(dm.shutil, 'disk_usage', lambda p: real(p)._replace(free=1000))
    with pytest.raises(OSError, match=rf"needs {need / 1e9:.2f} GB.*free.*{tmp_path / 'c'}"): FeatureCache(tmp_path / 'c', enc, fs, views)
    assert not list((tmp_path / 'c').rglob('*.npy'))
    monkeypatch.setattr(dm.shutil, 'disk_usage', real)
    fc = FeatureCache(tmp_path / 'c', enc, fs, views)
    st = os.stat(fc.dir / 'feats.npy')
    assert st.st_blocks * 512 >= need                                    # allocated, not sparse: no SIGBUS when the disk fills
    (c,) = feature_caches(tmp_path)
    assert c['bytes'] >= need and c['frames'] == 6 and not c['complete']


def test_full_disk_while_allocating_is_an_oserror_with_the_path(tmp_path, monkeypatch):
    import errno
    import mrdino.dinosaur as dm
    def full(fd, off, n): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(dm.os, 'posix_fallocate', full)
    with pytest.raises(OSError, match=r"could not allocate.*No space left.*x\.npy"): dm._allocate_npy(tmp_path / 'x.npy', (100, 100), np.float16)
    assert not (tmp_path / 'x.npy').exists()


def _dead_pid():
    import subprocess
    p = subprocess.Popen([sys.executable, '-c', 'pass']); p.wait()
    return p.pid


def test_leftovers_of_killed_writers_removed(tmp_path):
    import socket
    run = tmp_path / 'run'
    train_dinosaur(_tiny(3), frames(), run, progress=False)
    pid = _dead_pid()
    (run / 'ckpt' / f'.tmp_step_0000006_{pid}').mkdir()                 # old name: pid only
    (run / 'ckpt' / f'.tmp_step_0000006_{socket.gethostname()}-{pid}').mkdir()
    (run / 'ckpt' / f'.tmp_step_0000006_{socket.gethostname()}-{os.getpid()}_x').mkdir()   # not a writer's name: kept
    (cdir,) = [p for p in (run / 'feature_cache').iterdir() if p.is_dir()]
    (cdir / f'.tmp{pid}_feats.npy').write_bytes(b'x' * 1000)
    (cdir / f'.tmp{os.getpid()}_feats.npy').write_bytes(b'x')            # a live writer's: kept
    (run / f'.log.csv.{socket.gethostname()}-{pid}.tmp').write_text('step\n')   # an atomic_write of a killed run
    train_dinosaur(_tiny(6), frames(), run, progress=False)
    assert not list(run.glob('.log.csv.*.tmp'))
    left = sorted(p.name for p in [*(run / 'ckpt').glob('.tmp*'), *cdir.glob('.tmp*')])
    assert left == sorted([f'.tmp_step_0000006_{socket.gethostname()}-{os.getpid()}_x', f'.tmp{os.getpid()}_feats.npy'])


def test_cli_caches_lists_and_removes(tmp_path, capsys):
    from mrdino.cli import main
    train_dinosaur(_tiny(3), frames(), tmp_path / 'run', progress=False)
    capsys.readouterr()
    assert main(['caches', str(tmp_path)]) == 0
    assert '1 feature cache(s)' in capsys.readouterr().out
    assert main(['caches', str(tmp_path), '--remove']) == 0
    assert not list((tmp_path / 'run' / 'feature_cache').rglob('feats.npy'))


# ---- 6. smaller ones ----

def test_evaluate_replaces_overlays_and_records_what_it_scored(tmp_path, capsys):
    from mrdino.cli import main
    run = tmp_path / 'run'
    train_dinosaur(_tiny(3), frames(), run, progress=False)
    for name, seed in (('a', 0), ('b', 5)):
        assert main(['synth', str(tmp_path / name), '--videos', '1', '--frames', '3', '--height', '42', '--width', '126',
                     '--seed', str(seed), '--world', 'street']) == 0
    ev = tmp_path / 'ev'
    assert main(['evaluate', str(run), str(tmp_path / 'a'), '--out', str(ev), '--overlays', '2']) == 0
    assert sorted(p.name for p in (ev / 'overlays').iterdir()) == ['street_000_000000.png', 'street_000_000001.png']
    assert main(['evaluate', str(run), str(tmp_path / 'b'), '--out', str(ev), '--overlays', '1', '--every', '2']) == 0
    assert sorted(p.name for p in (ev / 'overlays').iterdir()) == ['street_005_000000.png']   # model a's overlays gone
    m = json.loads((ev / 'metrics.json').read_text())
    assert m['run']['checkpoint'] == str(run / 'ckpt' / 'step_0000003')
    assert m['run']['data'] == str((tmp_path / 'b').resolve()) and m['run']['head'] is None
    assert (m['protocol'], m['run']['every'], m['run']['frames']) == ('generic', 2, 2)


def test_pseudolabel_labelled_count_excludes_empty_maps(tmp_path, monkeypatch):
    import mrdino.pseudolabels as pl
    orig = pl.instance_steps
    calls = []
    def some_empty(flow, cfg):
        st = orig(flow, cfg); calls.append(st)
        if len(calls) % 2 == 0: st.instances = np.zeros_like(st.instances); st.dropped = False   # every second map has no instance
        return st
    monkeypatch.setattr(pl, 'instance_steps', some_empty)
    _write_seq(tmp_path / 'src' / 'seq', 0, 16)
    r = pl.pseudolabel(tmp_path / 'src', tmp_path / 'out', tau_static=50.0, progress=False)   # every pair qualifies
    rows = _records(tmp_path / 'out')[1]
    with_objects = sum(row['verdict'] == 'labelled' and int(row['instances'] or 0) > 0 for row in rows)
    assert any(row['verdict'] == 'labelled' and row['instances'] == '0' for row in rows)
    assert r['labelled'] == with_objects


def test_resumed_finished_run_prints_no_none_speed(tmp_path, capsys):
    run = tmp_path / 'run'
    train_dinosaur(_tiny(3), frames(), run, progress=False)
    capsys.readouterr()
    r = train_dinosaur(_tiny(3), frames(), run, progress=False)
    out = capsys.readouterr().out
    assert 'None' not in out and 'nothing left to train (resumed at step 3)' in out and r['step'] == 3


def test_unwritable_output_is_one_line(tmp_path, capsys, monkeypatch):
    import mrdino.readers
    from mrdino.cli import main
    def ro(path, arr): raise PermissionError(13, 'Permission denied', str(path))   # a read-only output (tests run as root)
    monkeypatch.setattr(mrdino.readers, 'write_png', ro)
    assert main(['synth', str(tmp_path / 'ro'), '--videos', '1', '--frames', '2', '--height', '28', '--width', '84']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'Permission denied' in err and str(tmp_path / 'ro') in err


def test_papermill_misspelled_parameter_stops_the_notebook(tmp_path):
    "05_stage2's own parameter cells (copied here with an import, so the example cells before them are not run)."
    import papermill as pm
    nb = json.loads((Path(__file__).parent.parent / 'nbs' / '05_stage2.ipynb').read_text())
    i = next(i for i, c in enumerate(nb['cells']) if 'parameters' in c['metadata'].get('tags', []))
    assert '_globals_before_parameters = set(globals())' in ''.join(nb['cells'][i - 1]['source'])
    mini = dict(nb, cells=[dict(cell_type='code', id='imp', metadata={}, execution_count=None, outputs=[],
                                source='from mrdino.pipeline import MainJob'), *nb['cells'][i - 1:i + 2]])
    (tmp_path / 'p.ipynb').write_text(json.dumps(mini))
    pm.execute_notebook(str(tmp_path / 'p.ipynb'), str(tmp_path / 'ok.ipynb'), parameters=dict(eval_every=3), progress_bar=False)
    with pytest.raises(pm.PapermillExecutionError, match=r"unknown parameter\(s\) eval_evry"):
        pm.execute_notebook(str(tmp_path / 'p.ipynb'), str(tmp_path / 'bad.ipynb'), parameters=dict(eval_evry=3), progress_bar=False)
