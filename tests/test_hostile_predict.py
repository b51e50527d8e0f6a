"""Hostile inputs to `mrdino predict` and the flow / pseudo-label steps: a model whose outputs are NaN, a finished OUT
with damaged files, frames too small for DIS, --encoder-weights on a stand-in model, frames the MP4 writer refuses.
Each case ends in one line that says what is wrong, or in outputs that are complete and true; never a traceback,
never NaN read as background, never a finished run taken on trust."""
import hashlib, json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mrdino.cli import main
from mrdino.readers import read_source
from mrdino.encoder import FILTERBANK_ARCH
from mrdino.dinosaur import Dinosaur, DinosaurConfig, save_checkpoint, load_dinosaur
from mrdino.predict import predict


def tiny_job(root:Path, blow_up:bool=False)->Path:
    "A main-job folder holding one untrained tiny DINOSAUR step on the demo's weight-free filter-bank encoder."
    cfg = DinosaurConfig.preset('synthetic', encoder_weights='filterbank', encoder_arch=FILTERBANK_ARCH, n_slots=3, decoder_hidden=16)
    torch.manual_seed(0)
    m = Dinosaur(cfg)
    if blow_up:                                          # finite weights whose products overflow, as after a diverged training
        with torch.no_grad():
            for l in m.decoder.mlp[::2]: l.weight.mul_(1e12)
    ck = save_checkpoint(root / 'dinosaur', m, step=1)
    (root / 'dinosaur' / 'done.json').write_text(json.dumps(dict(settings={}, summary=dict(step=1, checkpoint=str(ck)))))
    return root


def folder(root:Path, frames:list)->Path:
    "Frames (RGB) as PNG files 000000.png, ..."
    root.mkdir(parents=True)
    for t, f in enumerate(frames): cv2.imwrite(str(root / f'{t:06d}.png'), np.ascontiguousarray(f[..., ::-1]))
    return root


def noise(h:int, w:int, n:int, seed:int=0)->list:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def tree(root:Path)->dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob('*')) if p.is_file()}


def error_lines(err:str)->list:
    "The `mrdino ...: error:` lines of stderr (progress-bar lines aside), and no traceback."
    assert 'Traceback' not in err
    return [l for l in err.splitlines() if ': error: ' in l]


@pytest.fixture(scope='module')
def job(tmp_path_factory): return tiny_job(tmp_path_factory.mktemp('job'))


# case 4: non-finite model outputs are an error naming the model and the frame, not an all-background prediction
def test_non_finite_outputs_are_an_error_not_background(job, tmp_path, capsys, one_thread):
    bad = tiny_job(tmp_path / 'nan_job', blow_up=True)
    src = folder(tmp_path / 'frames', noise(126, 420, 3))
    out = tmp_path / 'out'
    rc = main(['predict', str(bad), str(src), str(out), '--variant', 'dinosaur', '--no-overlays'])
    lines = error_lines(capsys.readouterr().err)
    assert rc == 2 and len(lines) == 1, lines
    assert str(bad) in lines[0] and 'frames/000000' in lines[0] and 'NaN/inf' in lines[0]
    rec = json.loads((out / 'run.json').read_text())
    assert rec['status'] == 'failed' and 'NaN/inf' in rec['error']              # not left 'running', not 'done'
    assert not list(out.rglob('*.png')) and not (out / 'coco.json').exists()
    # the same check sits in the windowed forward of evaluation (predict_frame, evaluate_model)
    from mrdino.stage2 import predict_frame
    from mrdino.pipeline import evaluate_model
    model, vid = load_dinosaur(bad / 'dinosaur'), read_source('synthetic:1')[0]
    with pytest.raises(ValueError, match='alpha masks are NaN/inf'): predict_frame(model, vid[0].image)
    with pytest.raises(ValueError, match=rf"{vid.name} frame 0: .*NaN/inf"): evaluate_model(model, [vid], protocol='synthetic', every=100)
    rc = main(['evaluate', str(bad / 'dinosaur'), 'synthetic:1', '--out', str(tmp_path / 'eval'), '--every', '100', '--overlays', '0'])
    lines = error_lines(capsys.readouterr().err)
    assert rc == 2 and len(lines) == 1 and str(bad / 'dinosaur') in lines[0] and f'frame 0 of {vid.name}' in lines[0], lines
    # a finite model with an exploding stage-2 head: λ NaN is an error too
    from mrdino.stage2 import SlotDeactivation
    head = SlotDeactivation(model.cfg.slot_dim, hidden=16)
    with torch.no_grad():
        for p in head.parameters(): p.mul_(1e30)
    good = load_dinosaur(job / 'dinosaur')
    assert torch.isnan(head(torch.randn(2, 3, model.cfg.slot_dim))).any()     # the head does give NaN
    with pytest.raises(ValueError, match='λ'): predict_frame(good, vid[0].image, head)


# case 7: a finished OUT is verified against the sizes and hashes run.json records; what is damaged is made again
def test_damaged_finished_run_is_repaired_byte_identical(job, tmp_path, capsys, one_thread):
    src = folder(tmp_path / 'frames', noise(126, 420, 6, seed=1))
    out = tmp_path / 'out'
    kw = dict(variant='dinosaur', batch=4, progress=False)
    predict(job, src, out, **kw)
    ref = tree(out)
    (out / 'masks' / 'frames' / '000002.png').unlink()
    m4 = out / 'masks' / 'frames' / '000004.png'; m4.write_bytes(m4.read_bytes()[:40])
    capsys.readouterr()
    predict(job, src, out, **kw)
    said = capsys.readouterr().out
    assert 'nothing to do' not in said and 'masks/frames/000002.png (missing)' in said and 'masks/frames/000004.png (40 bytes' in said
    assert tree(out) == ref                                                     # remade byte-identical, run.json too
    files = json.loads(ref['run.json'])['outputs']['files']
    assert set(files) == {k for k in ref if k != 'run.json'}                    # every output recorded
    for k, (size, h) in files.items(): assert size == len(ref[k]) and hashlib.sha256(ref[k]).hexdigest().startswith(h)
    # same size, other bytes: the hash tells
    v = out / 'overlays' / 'frames.mp4'; b = bytearray(v.read_bytes()); b[len(b) // 2] ^= 0xFF; v.write_bytes(bytes(b))
    predict(job, src, out, **kw)
    assert 'overlays/frames.mp4 (its bytes differ' in capsys.readouterr().out and tree(out) == ref
    # coco.json holds the scores: damaged, every frame is segmented again, and the files end the same
    (out / 'coco.json').write_text('{}')
    r = predict(job, src, out, **kw)
    assert r['time']['frames_this_call'] == 6
    now = tree(out)
    assert [k for k in ref if ref[k] != now.get(k)] == ['run.json'] and set(now) == set(ref)
    predict(job, src, out, **kw)
    assert 'nothing to do' in capsys.readouterr().out


# case 10: frames smaller than DIS takes are refused up front, naming the sequence, its size and the minimum
def test_frames_too_small_for_dis_are_refused_up_front(tmp_path, capsys):
    src = folder(tmp_path / 'src' / 'tiny_seq', noise(1, 1, 8))
    for cmd in (['pseudolabel', str(src.parent), str(tmp_path / 'labels')], ['flow', str(src.parent)]):
        rc = main(cmd)
        lines = error_lines(capsys.readouterr().err)
        assert rc == 2 and len(lines) == 1, (cmd, lines)
        assert 'tiny_seq' in lines[0] and '1×1' in lines[0] and 'at least 8 px on the short side and 12 px on the long side' in lines[0]
    assert not (tmp_path / 'labels').exists()                                   # nothing half-written
    # the stated minimum is true: 8×12 and 12×8 frames go through the whole job
    ok = tmp_path / 'ok'
    folder(ok / 'wide', noise(8, 12, 6)); folder(ok / 'tall', noise(12, 8, 6))
    assert main(['pseudolabel', str(ok), str(tmp_path / 'labels_ok')]) == 0
    # a coarse preset on short, wide frames (where OpenCV crashes the process) is refused, not run
    from mrdino.flow import DISFlow, check_flow_size
    with pytest.raises(ValueError, match="frames are 100×12 px: DIS preset 'medium' needs frames at least 16 px tall"):
        check_flow_size(DISFlow('medium'), 12, 100)


# case 12: --encoder-weights on a model trained on a stand-in encoder says so, before the file is read
def test_encoder_weights_on_a_stand_in_model(job, tmp_path, capsys):
    src = folder(tmp_path / 'frames', noise(126, 420, 2))
    w = tmp_path / 'dinov2_vitb14_pretrain.pth'; w.write_bytes(b'not read')
    rc = main(['predict', str(job), str(src), str(tmp_path / 'out'), '--variant', 'dinosaur', '--encoder-weights', str(w)])
    lines = error_lines(capsys.readouterr().err)
    assert rc == 2 and len(lines) == 1, lines
    assert 'stand-in encoder' in lines[0] and str(w) in lines[0] and 'leave --encoder-weights out' in lines[0]
    assert not (tmp_path / 'out' / 'run.json').exists()


# case 16: overlays of frames the MP4 encoder refuses as they are (1 px, over 8190 px, odd) are fitted and said so;
# the overlay choice is no setting: a rerun with or without overlays is not refused
# MP4 sides must be even, 2 to 8190 px: 1×1 is enlarged to 2×2; 8300×126 scaled by 8190/8300 (126 → 124.3 → 124);
# 125×421 padded by one black row and column
@pytest.mark.parametrize('h,w,H,W', [(1, 1, 2, 2), (8300, 126, 8190, 124), (125, 421, 126, 422)])
def test_overlays_of_odd_sized_frames(job, tmp_path, capsys, h, w, H, W, one_thread):
    src = folder(tmp_path / 'frames', noise(h, w, 2))
    out = tmp_path / 'out'
    rc = main(['predict', str(job), str(src), str(out), '--variant', 'dinosaur'])
    io = capsys.readouterr()
    assert rc == 0 and not error_lines(io.err)
    cap = cv2.VideoCapture(str(out / 'overlays' / 'frames.mp4'))
    assert (cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FRAME_HEIGHT), cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == (2, H, W)
    ok, f = cap.read(); cap.release()
    assert ok and f.shape[:2] == (H, W)
    assert f"shows the {w}×{h} frames at {W}×{H}" in io.out
    # --no-overlays on the finished run: not refused, nothing to do
    assert main(['predict', str(job), str(src), str(out), '--variant', 'dinosaur', '--no-overlays']) == 0
    assert 'nothing to do' in capsys.readouterr().out
    # a run without overlays, then with: the overlays are added, the masks left as they are
    out2 = tmp_path / 'out2'
    assert main(['predict', str(job), str(src), str(out2), '--variant', 'dinosaur', '--no-overlays']) == 0
    masks = tree(out2 / 'masks')
    assert main(['predict', str(job), str(src), str(out2), '--variant', 'dinosaur']) == 0
    assert 'overlay video(s) it was run without' in capsys.readouterr().out
    assert tree(out2 / 'masks') == masks == tree(out / 'masks') and (out2 / 'overlays' / 'frames.mp4').exists()
