"""Hostile model files: foreign folders under `caches --remove`, NaN weights, damaged latest checkpoints that would pair
a stage-2 head with another model, files that are not what their name says, zip bombs (every input is built here)."""
import json, warnings, zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mrdino.cli import main
from mrdino.readers import write_png
from mrdino.encoder import build_encoder, build_vit, load_dinov2_weights, read_state_dict
from mrdino.dinosaur import (Dinosaur, DinosaurConfig, FeatureCache, FrameSet, cache_views,
                             load_dinosaur, load_state, save_checkpoint)
from mrdino.stage2 import Stage2Config, load_head, train_stage2
from mrdino.reference import load_reference_checkpoint
from mrdino.pipeline import load_trained, resolve_model
from test_dinosaur_train import frames
from test_reference_ckpt import ref_state_dict, save_ckpt

pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py

ARCH = dict(embed_dim=16, depth=1, num_heads=2)
CFG = DinosaurConfig.preset('synthetic', crop=42, n_slots=3, slot_dim=8, decoder_hidden=16, resize=(42, 126),
                            cache_stride=14, encoder_arch=ARCH)


def _model(seed):
    torch.manual_seed(seed)
    return Dinosaur(CFG)


def _cli(argv, capsys):
    "Exit code, stdout and stderr of `mrdino ARGV`."
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _frames_folder(path):
    "A folder of two 42x126 PNG frames (a source for `mrdino predict`)."
    for i, f in enumerate(frames(2)): write_png(path / f'{i:06d}.png', f)
    return path


def _one_line_error(rc, err, *parts):
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc == 2 and len(lines) == 1, err
    assert 'Traceback' not in err and 'weights_only=False' not in err, err
    for p in parts: assert str(p) in lines[0], (p, lines[0])


# ---- 1. `mrdino caches --remove` deletes only what mrdino wrote ----

def _cache(root, seed):
    "A real (tiny) feature cache of two frames under `root`."
    enc = build_encoder(CFG)
    fs = FrameSet(frames(2, seed), CFG.resize, CFG.crop)
    return FeatureCache(root, enc, fs, cache_views(fs.size, CFG.crop, CFG.cache_stride, CFG.hflip)).dir


def test_caches_remove_leaves_foreign_folders_alone(tmp_path, capsys):
    user = tmp_path / 'my_features'; user.mkdir()                         # a user's own features, laid out like a cache
    np.save(user / 'feats.npy', np.zeros((2, 3), np.float32))
    (user / 'meta.json').write_text(json.dumps(dict(shape=[2, 1, 3, 1])))
    (user / 'README.txt').write_text('my work'); (user / 'labels.csv').write_text('a,b\n')
    noshape = tmp_path / 'noshape'; noshape.mkdir()
    np.save(noshape / 'feats.npy', np.zeros(2)); (noshape / 'meta.json').write_text('{"frames": 2}')
    garbled = tmp_path / 'garbled'; garbled.mkdir()
    np.save(garbled / 'feats.npy', np.zeros(2)); (garbled / 'meta.json').write_text('{not json')
    clean = _cache(tmp_path / 'run' / 'feature_cache', 0)
    shared = _cache(tmp_path / 'run' / 'feature_cache', 1)
    (shared / 'notes.txt').write_text('someone put this here')
    old = _cache(tmp_path / 'old_run' / 'feature_cache', 2)                # written by an mrdino without the format tag
    meta = json.loads((old / 'meta.json').read_text()); meta.pop('format', None)
    (old / 'meta.json').write_text(json.dumps(meta, indent=1))
    foreign = sorted(p.relative_to(tmp_path) for d in (user, noshape, garbled) for p in d.iterdir())

    rc, out, err = _cli(['caches', tmp_path], capsys)                     # listing removes nothing
    assert rc == 0 and not err
    assert '3 feature cache(s)' in out and out.count('skipped, not a feature cache written by mrdino') == 3
    assert all(d.exists() for d in (clean, shared, old))

    rc, out, err = _cli(['caches', tmp_path, '--remove'], capsys)
    assert rc == 0 and 'Traceback' not in err, err
    assert sorted(p.relative_to(tmp_path) for d in (user, noshape, garbled) for p in d.iterdir()) == foreign
    assert (user / 'README.txt').read_text() == 'my work'
    for d in (user, noshape, garbled):
        (line,) = [l for l in out.splitlines() if l.startswith(f"{d}:")]
        assert 'skipped' in line and 'delete it by hand' in line, line
    assert 'meta.json is not readable JSON' in out
    assert not clean.exists() and not old.exists()                         # mrdino's caches (also an old one) are gone
    assert sorted(p.name for p in shared.iterdir()) == ['notes.txt']        # only the cache's own files were deleted
    assert 'the folder stays, it also holds notes.txt' in out
    assert '3 feature cache(s)' in out and '3 other folder(s) with a feats.npy left alone' in out


# ---- 4. NaN weights are refused on load ----

def _stage1_run(tmp_path, steps=(777, 888)):
    "A stage-1 run folder with two checkpoints of different weights."
    run = tmp_path / 'stage1'
    for s in steps: save_checkpoint(run, _model(s), s)
    return run


def _windows():
    w = frames(4)[:, :, :42].copy()
    lab = np.zeros((4, 42, 42), np.int32); lab[:, 5:20, 5:20] = 1
    return w, lab


def _stage2_run(tmp_path, base, name='stage2'):
    "Stage 2 (2 head checkpoints) trained on the model `load_dinosaur(base)` loads."
    w, lab = _windows()
    train_stage2(load_dinosaur(base), w, lab, Stage2Config(epochs=2, batch_size=2, hidden=8, ckpt_every=2), tmp_path / name, progress=False)
    return tmp_path / name


def _rewrite(f, change, metadata='keep'):
    "Rewrite a safetensors file with `change(state dict)` applied (keeping its metadata unless told)."
    from safetensors import safe_open
    with safe_open(str(f), 'pt') as fh: md = fh.metadata()
    sd = load_file(str(f)); change(sd)
    save_file(sd, str(f), metadata=md if metadata == 'keep' else metadata)


def test_nan_stage1_weights_are_refused(tmp_path, capsys):
    run = _stage1_run(tmp_path, (888,))
    f = run / 'ckpt' / 'step_0000888' / 'model.safetensors'
    _rewrite(f, lambda sd: [v.fill_(float('nan')) for v in sd.values()])
    with pytest.raises(ValueError, match=rf"{f}: tensor \S+ has \d+ of \d+ values NaN or infinite \(and \d+ more"):
        load_dinosaur(run)
    rc, out, err = _cli(['predict', run, _frames_folder(tmp_path / 'src'), tmp_path / 'pred'], capsys)
    _one_line_error(rc, err, f, 'NaN')
    assert not (tmp_path / 'pred' / 'run.json').exists()


def test_nan_in_head_bias_is_refused(tmp_path):
    s1 = _stage1_run(tmp_path, (888,))
    s2 = _stage2_run(tmp_path, s1)
    f = s2 / 'ckpt' / 'step_0000004' / 'head.safetensors'
    _rewrite(f, lambda sd: sd['mlp.0.bias'].__setitem__(0, float('nan')))   # one NaN in the first bias
    with pytest.raises(ValueError, match=rf"{f}: tensor mlp.0.bias has 1 of 8 values NaN"): load_head(s2)
    with pytest.raises(ValueError, match=rf"{f}: tensor mlp.0.bias has 1 of 8 values NaN"): load_trained(s1, head=s2)


def test_nan_in_reference_ckpt_and_encoder_files_is_refused(tmp_path):
    sd = ref_state_dict()
    sd['models.perceptual_grouping.slot_attention.gru.bias_hh'][3] = float('inf')
    ck = save_ckpt(tmp_path / 'ref.ckpt', sd)
    cfg = DinosaurConfig.preset('synthetic', encoder_arch=ARCH, crop=42, n_slots=5)
    with pytest.raises(ValueError, match=rf"{ck}: tensor models.perceptual_grouping.slot_attention.gru.bias_hh has 1 of 24"):
        load_reference_checkpoint(ck, cfg, encoder=build_encoder(cfg))
    vit = build_vit('vit_small_patch14_dinov2', 42, ARCH)
    enc = {k: v.clone() for k, v in vit.state_dict().items()}
    enc['blocks.0.attn.qkv.weight'][0, 0] = float('nan')
    save_file(enc, str(tmp_path / 'enc.safetensors')); torch.save(enc, tmp_path / 'enc.pth')
    for name in ('enc.safetensors', 'enc.pth'):
        with pytest.raises(ValueError, match=rf"{tmp_path / name}: tensor blocks.0.attn.qkv.weight has 1 of"):
            load_dinov2_weights(build_vit('vit_small_patch14_dinov2', 42, ARCH), tmp_path / name)


# ---- 5. a head is used only with the model it was trained on ----

@pytest.fixture
def pair(tmp_path):
    "(stage-1 run with steps 777 and 888, stage-2 run trained on step 888 with heads at steps 2 and 4)."
    s1 = _stage1_run(tmp_path)
    return s1, _stage2_run(tmp_path, s1)


def _checkpoint_warnings(caught):
    "Python warnings about checkpoints (a fallback must be a log line, not a warning with a source line)."
    return [str(w.message) for w in caught if 'step_' in str(w.message)]


def _job(tmp_path, s1, s2):
    "A main-job folder holding the two runs (done.json as the main job writes it)."
    job = tmp_path / 'job'; job.mkdir()
    for d in (s1, s2):
        d.rename(job / d.name); (job / d.name / 'done.json').write_text(json.dumps(dict(settings={}, summary={})))
    return job


def test_truncated_stage1_checkpoint_is_not_paired_with_a_newer_head(tmp_path, pair, capsys):
    s1, s2 = pair
    f = s1 / 'ckpt' / 'step_0000888' / 'model.safetensors'
    f.write_bytes(f.read_bytes()[:-100])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with pytest.raises(ValueError, match=rf"trained on \(weights hash [0-9a-f]{{16}}, \S+step_0000888, step 888\); damaged: {f} is \d+ bytes.*truncated"):
            load_trained(s1, head=s2)
        job = _job(tmp_path, s1, s2)
        with pytest.raises(ValueError, match='step_0000888/model.safetensors is'): resolve_model(job)
        with pytest.raises(ValueError, match='step_0000888/model.safetensors is'): resolve_model(job / 'stage2')
    assert not _checkpoint_warnings(caught)
    rc, out, err = _cli(['predict', job, _frames_folder(tmp_path / 'src'), tmp_path / 'pred'], capsys)
    _one_line_error(rc, err, 'step_0000888/model.safetensors', 'truncated', 'restore the damaged file, or train again')


def test_damaged_latest_head_falls_back_to_a_consistent_pair_in_one_line(tmp_path, pair, capsys):
    s1, s2 = pair
    (s2 / 'ckpt' / 'step_0000004' / 'head.safetensors').write_bytes(b'')          # a zero-byte head
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always'); model, head, desc = load_trained(s1, head=s2)
    assert not _checkpoint_warnings(caught)
    said = [l for l in capsys.readouterr().out.splitlines() if 'step_0000004/head.safetensors' in l]
    assert len(said) == 1 and 'using model' in said[0] and 'step_0000888' in said[0] and 'step_0000002' in said[0], said
    assert 'step_0000888' in desc and 'step_0000002' in desc
    w = load_file(str(s2 / 'ckpt' / 'step_0000002' / 'head.safetensors'))
    assert torch.equal(head.mlp[0].bias, w['mlp.0.bias'])


def test_damaged_latest_model_falls_back_only_to_the_model_the_head_knows(tmp_path, capsys):
    s1 = _stage1_run(tmp_path, (777,))
    s2 = _stage2_run(tmp_path, s1)                                                # the head is trained on step 777
    save_checkpoint(s1, _model(888), 888)                                         # later, stage 1 went on (then its file broke)
    f = s1 / 'ckpt' / 'step_0000888' / 'model.safetensors'
    f.write_bytes(f.read_bytes()[:-100])
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always'); model, head, desc = load_trained(s1, head=s2)
    assert not _checkpoint_warnings(caught)
    said = [l for l in capsys.readouterr().out.splitlines() if str(f) in l]
    assert len(said) == 1 and 'step_0000777' in said[0] and 'which was trained on it' in said[0], said
    want = load_file(str(s1 / 'ckpt' / 'step_0000777' / 'model.safetensors'))
    assert all(torch.equal(v, want[k]) for k, v in model.trainable_state_dict().items())


def test_head_without_a_record_loads_unverified_but_never_with_a_fallback_model(tmp_path, pair, capsys):
    s1, s2 = pair
    for s in (2, 4): _rewrite(s2 / 'ckpt' / f'step_{s:07d}' / 'head.safetensors', lambda sd: None, metadata=None)   # as saved before
    capsys.readouterr()
    load_trained(s1, head=s2)
    said = [l for l in capsys.readouterr().out.splitlines() if 'pairing unverified' in l]
    assert len(said) == 1 and 'step_0000004' in said[0], said
    f = s1 / 'ckpt' / 'step_0000888' / 'model.safetensors'
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ValueError, match=rf"{f} is .*does not record which model.*step_0000777 cannot be checked"):
        load_trained(s1, head=s2)


def test_stage2_does_not_resume_on_another_model(tmp_path, pair):
    s1, s2 = pair
    w, lab = _windows()
    other = load_dinosaur(s1 / 'ckpt' / 'step_0000777')
    with pytest.raises(ValueError, match=r'step_0000004 holds a head trained on another model.*step 888'):
        train_stage2(other, w, lab, Stage2Config(epochs=3, batch_size=2, hidden=8, ckpt_every=2), s2, progress=False)


# ---- 13, 14. a file that is not what its name says: one line naming it ----

def _run_with_encoder_file(tmp_path, write):
    "A DINOSAUR run whose config.json names an encoder weight file that `write(path)` creates."
    run = tmp_path / 'run'
    save_checkpoint(run, _model(0), 3)
    ck = run / 'ckpt' / 'step_0000003'
    meta = json.loads((ck / 'config.json').read_text())
    meta['config']['encoder_weights'] = str(write(tmp_path))
    (ck / 'config.json').write_text(json.dumps(meta))
    return run


def _torch_zip_as_safetensors(d):
    torch.save(build_vit('vit_small_patch14_dinov2', 42, ARCH).state_dict(), d / 'model.safetensors')
    return d / 'model.safetensors'


def test_torch_zip_named_safetensors_is_one_line(tmp_path, capsys):
    f = _torch_zip_as_safetensors(tmp_path)
    with pytest.raises(ValueError, match=rf"^{f} is not a safetensors file: a zip archive"): read_state_dict(f)
    run = _run_with_encoder_file(tmp_path, lambda d: f)
    rc, out, err = _cli(['predict', run, _frames_folder(tmp_path / 'src'), tmp_path / 'pred'], capsys)
    _one_line_error(rc, err, f, 'is not a safetensors file', 'config.json')


def _pickled_module(d):
    torch.save(build_vit('vit_small_patch14_dinov2', 42, ARCH), d / 'vit.pth')      # the whole module: needs pickle
    return d / 'vit.pth'


def _truncated_zip(d):
    torch.save(build_vit('vit_small_patch14_dinov2', 42, ARCH).state_dict(), d / 'cut.pth')
    data = (d / 'cut.pth').read_bytes(); (d / 'cut.pth').write_bytes(data[:len(data) * 2 // 3])
    return d / 'cut.pth'


@pytest.mark.parametrize('write, what', [(_pickled_module, 'needs pickle'), (_truncated_zip, 'a damaged zip archive')])
def test_bad_encoder_file_named_in_config_is_one_line(tmp_path, capsys, write, what):
    f = write(tmp_path)
    run = _run_with_encoder_file(tmp_path, lambda d: f)
    with pytest.raises(ValueError, match=what): load_dinosaur(run)
    rc, out, err = _cli(['predict', run, _frames_folder(tmp_path / 'src'), tmp_path / 'pred'], capsys)
    _one_line_error(rc, err, f, what, '--encoder-weights', 'config.json')


# ---- 19b. declared sizes are checked against the file before reading ----

def _inflating(src, dst, mib=64):
    "`src` (a torch zip) with its largest member padded to `mib` MiB of zeros and deflated: small on disk, large inflated."
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        big = max(zin.infolist(), key=lambda i: i.file_size).filename
        for i in zin.infolist():
            data = zin.read(i.filename)
            if i.filename == big:
                zout.writestr(i.filename, data + bytes((mib << 20) - len(data)), compress_type=zipfile.ZIP_DEFLATED)
            else: zout.writestr(i, data)
    return dst


@pytest.mark.parametrize('reader', ['reference', 'encoder', 'state'])
def test_zip_that_inflates_far_beyond_its_size_is_refused_before_reading(tmp_path, monkeypatch, reader):
    if reader == 'reference': save_ckpt(tmp_path / 'x.pt', ref_state_dict())
    elif reader == 'encoder': torch.save(build_vit('vit_small_patch14_dinov2', 42, ARCH).state_dict(), tmp_path / 'x.pt')
    else: torch.save(dict(step=3, opt=dict(state={}, param_groups=[]), gen=torch.zeros(8, dtype=torch.uint8)), tmp_path / 'x.pt')
    f = _inflating(tmp_path / 'x.pt', tmp_path / 'bomb.ckpt')
    assert f.stat().st_size < 1 << 20
    read = []
    real = torch.load
    monkeypatch.setattr(torch, 'load', lambda *a, **k: read.append(a) or real(*a, **k))
    load = dict(reference=lambda: load_reference_checkpoint(f, CFG, encoder=build_encoder(CFG)),
                encoder=lambda: read_state_dict(f), state=lambda: load_state(f))[reader]
    with pytest.raises(ValueError, match=rf"^{f} is not a readable PyTorch checkpoint: its zip members declare 0.06 GiB uncompressed in a 0.\d MiB file, refused before reading"):
        load()
    assert not read                                                             # torch.load never ran


def test_safetensors_header_beyond_the_file_is_refused_before_reading(tmp_path):
    f = tmp_path / 'w.safetensors'
    hdr = json.dumps({'w': dict(dtype='F32', shape=[1 << 28], data_offsets=[0, 1 << 30])}).encode()
    f.write_bytes(len(hdr).to_bytes(8, 'little') + hdr + bytes(64))            # declares 1 GiB, holds 64 bytes
    with pytest.raises(ValueError, match=rf"^{f} is \d+ bytes, its header needs \d+ \(truncated\)"): read_state_dict(f)
    f.write_bytes((10**15).to_bytes(8, 'little') + b'{}')                      # a header length beyond the file
    with pytest.raises(ValueError, match=rf"^{f} is not a safetensors file: its first 8 bytes declare a 1e\+15-byte header in a 10-byte file"):
        read_state_dict(f)


def test_evaluate_records_the_pair_it_loaded(tmp_path, capsys):
    "A head trained on step 777 of a run that went on to step 888: evaluate scores (and records) step 777, not the newest."
    s1 = _stage1_run(tmp_path, (777,))
    s2 = _stage2_run(tmp_path, s1)                                                # the head is trained on step 777
    save_checkpoint(s1, _model(888), 888)                                         # an intact later step the head never saw
    data = tmp_path / 'data'
    for i, f in enumerate(frames(2)):
        write_png(data / 'frames' / 'v' / f'{i:06d}.png', f)
        gt = np.zeros(f.shape[:2], np.uint16); gt[5:20, 5:30] = 1
        write_png(data / 'gt' / 'v' / 'instances' / f'{i:06d}.png', gt)
    rc, out, err = _cli(['evaluate', s1, data, '--head', s2, '--protocol', 'generic', '--out', tmp_path / 'ev', '--overlays', '0'], capsys)
    assert rc == 0, err
    rec = json.loads((tmp_path / 'ev' / 'metrics.json').read_text())
    rec = rec['run']                                                              # what was scored
    assert rec['checkpoint'].endswith('step_0000777'), rec['checkpoint']
    assert 'step_0000777' in out and 'step_0000888' not in out.split('evaluating', 1)[1].split('\n', 1)[0]
