"""DINOSAUR training: exact resume after a real kill, NaN stop, feature cache equality and resumable build."""
import json, signal, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mrdino.encoder import build_encoder
from mrdino.dinosaur import (DinosaurConfig, FeatureCache, FrameSet, cache_views, find_checkpoint,
                             load_dinosaur, take_view, to_images, train_dinosaur)

TINY = dict(crop=42, n_slots=3, slot_dim=8, decoder_hidden=16, batch_size=4, resize=(42, 126), cache_stride=14,
            encoder_arch=dict(embed_dim=16, depth=1, num_heads=2), warmup_steps=3, decay_steps=20, log_every=1)


pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


def frames(n=6, seed=0):
    "Small random-blob RGB frames (N, 42, 126, 3)."
    rng = np.random.default_rng(seed)
    f = np.full((n, 42, 126, 3), 90, np.uint8)
    for i in range(n):
        for _ in range(3):
            y, x = rng.integers(0, 30), rng.integers(0, 110)
            f[i, y:y + 12, x:x + 16] = rng.integers(0, 255, 3)
    return f


def weights(run, step):
    return load_file(str(Path(run) / 'ckpt' / f'step_{step:07d}' / 'model.safetensors'))


_KILL_SCRIPT = """
import os, signal, sys, numpy as np, torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
from test_dinosaur_train import frames, TINY
import mrdino.dinosaur as d
orig = d.save_checkpoint
def save_then_die(out_dir, model, step, *a, **k):
    p = orig(out_dir, model, step, *a, **k)
    if step == 6: os.kill(os.getpid(), signal.SIGKILL)   # killed right after the step-6 checkpoint, mid-run
    return p
d.save_checkpoint = save_then_die
d.train_dinosaur(d.DinosaurConfig.preset('synthetic', steps=10, ckpt_every=3, **TINY), frames(), {out!r}, cache={cache}, progress=False)
"""


@pytest.mark.parametrize('cache', [True, False])
def test_killed_run_resumes_bit_identical(tmp_path, cache):
    cfg = DinosaurConfig.preset('synthetic', steps=10, ckpt_every=3, **TINY)
    ref = train_dinosaur(cfg, frames(), tmp_path / 'ref', cache=cache, progress=False)
    assert ref['step'] == 10
    script = _KILL_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path / 'killed'), cache=cache)
    p = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    assert find_checkpoint(tmp_path / 'killed').name == 'step_0000006'
    res = train_dinosaur(cfg, frames(), tmp_path / 'killed', cache=cache, progress=False)
    assert res['step'] == 10
    a, b = weights(tmp_path / 'ref', 10), weights(tmp_path / 'killed', 10)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the optimiser state matches too (a further resume would also continue identically)
    sa = torch.load(tmp_path / 'ref' / 'ckpt' / 'step_0000010' / 'state.pt', weights_only=False)
    sb = torch.load(tmp_path / 'killed' / 'ckpt' / 'step_0000010' / 'state.pt', weights_only=False)
    assert all(torch.equal(sa['opt']['state'][i]['exp_avg_sq'], sb['opt']['state'][i]['exp_avg_sq']) for i in sa['opt']['state'])
    assert torch.equal(sa['gen'], sb['gen'])
    # no temporary checkpoint folders are left behind; the log has each step once
    assert not list((tmp_path / 'killed' / 'ckpt').glob('.tmp*'))
    steps = [int(l.split(',')[0]) for l in (tmp_path / 'killed' / 'log.csv').read_text().splitlines()[1:]]
    assert steps == list(range(1, 11))


def test_training_reduces_loss_and_reloads(tmp_path):
    cfg = DinosaurConfig.preset('synthetic', steps=60, ckpt_every=30, **{**TINY, 'lr': 2e-3, 'batch_size': 8, 'decay_steps': 1000})
    first = train_dinosaur(cfg, frames(), tmp_path / 'run', progress=False)
    again = train_dinosaur(cfg, frames(), tmp_path / 'run', progress=False)     # finished run: nothing to do
    assert again['step'] == 60 and again['loss'] == pytest.approx(first['loss'], rel=1e-5)   # its last logged loss, not NaN
    rows = (tmp_path / 'run' / 'log.csv').read_text().splitlines()[1:]
    loss = [float(r.split(',')[1]) for r in rows]
    assert np.mean(loss[-10:]) < 0.7 * np.mean(loss[:3])
    assert all(float(r.split(',')[5]) > 0 for r in rows)            # images/s logged on every row
    m = load_dinosaur(tmp_path / 'run')
    assert torch.equal(m.slot_mu, weights(tmp_path / 'run', 60)['slot_mu'])
    run = json.loads((tmp_path / 'run' / 'run.json').read_text())
    assert 'stand-in encoder, not DINOv2 weights' in run['encoder'] and run['fast_paths']['bf16_autocast'] is False


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = DinosaurConfig.preset('synthetic', steps=4, ckpt_every=2, **TINY)
    train_dinosaur(cfg, frames(), tmp_path / 'run', progress=False)
    before = weights(tmp_path / 'run', 4)
    cache = next((tmp_path / 'run' / 'feature_cache').iterdir())
    f = np.lib.format.open_memmap(cache / 'feats.npy', mode='r+'); f[:] = np.nan; f.flush(); del f   # corrupted features
    with pytest.raises(FloatingPointError, match='step 5 is not finite.*step_0000004'):
        train_dinosaur(cfg, frames(), tmp_path / 'run', steps=8, progress=False)
    assert find_checkpoint(tmp_path / 'run').name == 'step_0000004'
    after = weights(tmp_path / 'run', 4)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resume_with_other_settings_is_refused(tmp_path):
    train_dinosaur(DinosaurConfig.preset('synthetic', steps=2, ckpt_every=2, **TINY), frames(), tmp_path / 'run', progress=False)
    with pytest.raises(ValueError, match="other settings.*slot_dim"):
        train_dinosaur(DinosaurConfig.preset('synthetic', steps=4, **{**TINY, 'slot_dim': 4}), frames(), tmp_path / 'run', progress=False)


def test_cache_equals_encoder_and_build_resumes(tmp_path):
    cfg = DinosaurConfig.preset('synthetic', **TINY)
    enc = build_encoder(cfg)
    fs = FrameSet(frames(4), cfg.resize, cfg.crop)
    views = cache_views(fs.size, cfg.crop, cfg.cache_stride, True)
    assert len(views) == 2 * len(range(0, 126 - 42 + 1, 14))            # offsets 0, 14, ..., 84, each plain + flipped
    c = FeatureCache(tmp_path, enc, fs, views).build(progress=False)
    direct = lambda i, v: enc(to_images(take_view(fs[i], *views[v], 42)[None]))[0]
    for i in range(4):
        for v in range(len(views)):
            assert torch.equal(c.get([i], [v])[0], direct(i, v).half().float())
    # the flipped view is the encoder on the mirrored crop, not mirrored features
    assert not torch.equal(c.get([0], [1])[0], c.get([0], [0])[0].reshape(3, 3, -1).flip(1).reshape(9, -1))
    # a killed build: frame 2 not marked done and holding garbage -> the next build redoes frame 2 only
    c.feats[2] = 7; c.feats[3] = 5; c.done[2] = 0
    c2 = FeatureCache(tmp_path, enc, fs, views)
    assert not c2.complete
    c2.build(progress=False)
    assert torch.equal(c2.get([2], [3])[0], direct(2, 3).half().float())
    assert (c2.feats[3] == 5).all()                                      # done frames are not recomputed
    # other frames or another encoder -> another cache key
    assert FeatureCache(tmp_path, enc, FrameSet(frames(4, seed=1), cfg.resize, cfg.crop), views).key != c.key
    assert FeatureCache(tmp_path, build_encoder(DinosaurConfig.preset('synthetic', **{**TINY, 'seed': 1})), fs, views).key != c.key


def test_lost_latest_pointer_falls_back_to_newest_checkpoint(tmp_path):
    train_dinosaur(DinosaurConfig.preset('synthetic', steps=4, ckpt_every=2, **TINY), frames(), tmp_path / 'run', progress=False)
    (tmp_path / 'run' / 'ckpt' / 'latest').unlink()
    (tmp_path / 'run' / 'ckpt' / '.tmp_step_0000006_1').mkdir()          # a half-written checkpoint is ignored
    assert find_checkpoint(tmp_path / 'run').name == 'step_0000004'
    assert find_checkpoint(tmp_path / 'nothing') is None
