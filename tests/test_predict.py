"""`mrdino predict`: COCO RLE that pycocotools decodes to exactly the PNG masks, kill -9 and rerun gives byte-identical
files, the source stays untouched, an output inside the source is refused, a bad frame is reported and skipped."""
import hashlib, json, signal, subprocess, sys, time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from mrdino.readers import read_source
from mrdino.predict import predict
from mrdino.cli import main

N_FRAMES = 24


def tiny_job(out:Path)->Path:
    "A main-job folder in miniature (MainJob layout): DINOSAUR 10 steps, a stage-2 head 3 steps on GT masks."
    from mrdino.dinosaur import DinosaurConfig, train_dinosaur, load_dinosaur
    from mrdino.stage1 import training_windows, Stage1Config
    from mrdino.stage2 import train_stage2, Stage2Config
    vid = read_source('synthetic:1')[0]
    fr = [vid[t] for t in range(0, 60, 6)]
    done = lambda d, settings, summary: (d / 'done.json').write_text(json.dumps(dict(settings=settings, summary=summary), default=str))
    s = train_dinosaur(DinosaurConfig.preset('synthetic', steps=10, batch_size=8), [f.image for f in fr], out / 'dinosaur',
                       cache=False, device='cpu', progress=False)
    done(out / 'dinosaur', {}, s)
    w, l, _ = training_windows([f.image for f in fr], [f.gt for f in fr], Stage1Config.preset('synthetic'))
    h = train_stage2(load_dinosaur(out / 'dinosaur'), w, l, Stage2Config.preset('synthetic', max_steps=3), out / 'only_stage2',
                     device='cpu', progress=False)
    done(out / 'only_stage2', dict(base=s), h)
    return out


@pytest.fixture(scope='module')
def job(tmp_path_factory): return tiny_job(tmp_path_factory.mktemp('job'))


@pytest.fixture(scope='module')
def frames():
    vid = read_source('synthetic:1')[0]
    return [vid[t].image for t in range(N_FRAMES)]


@pytest.fixture(scope='module')
def video(frames, tmp_path_factory):
    "An MJPEG .avi of the frames (decoded by OpenCV like any user video)."
    p = tmp_path_factory.mktemp('src') / 'street.avi'
    vw = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*'MJPG'), 10, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames: vw.write(f[..., ::-1].copy())
    vw.release()
    assert len(read_source(p)[0]) == N_FRAMES
    return p


def folder(frames, root:Path, bad:int|None=None)->Path:
    "Frames as PNG files; frame `bad` truncated."
    root.mkdir(parents=True)
    for t, f in enumerate(frames): cv2.imwrite(str(root / f'{t:06d}.png'), f[..., ::-1])
    if bad is not None: (root / f'{bad:06d}.png').write_bytes((root / f'{bad:06d}.png').read_bytes()[:60])
    return root


def tree(root:Path)->dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob('*')) if p.is_file()}


def digest(root:Path)->dict:
    return {k: hashlib.sha256(v).hexdigest() for k, v in tree(root).items()}


def test_coco_rle_decodes_to_png_masks(job, frames, tmp_path):
    from pycocotools import mask as mu
    from pycocotools.coco import COCO
    src = folder(frames[:6], tmp_path / 'frames')
    r = predict(job, src, tmp_path / 'out', variant='only_stage2', batch=4, progress=False, overlays=False)
    coco = json.loads((tmp_path / 'out' / 'coco.json').read_text())
    api = COCO(); api.dataset = coco; api.createIndex()                     # pycocotools reads the file as it is
    assert len(coco['images']) == 6 == r['frames']['written'] and coco['categories'] == [dict(id=1, name='object', supercategory='object')]
    n_ann = 0
    for im in coco['images']:
        png = cv2.imread(str(tmp_path / 'out' / 'masks' / im['file_name']), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint16 and png.shape == (im['height'], im['width']) == frames[0].shape[:2]
        anns = api.loadAnns(api.getAnnIds(imgIds=[im['id']]))
        assert sorted(a['instance_id'] for a in anns) == sorted(set(np.unique(png).tolist()) - {0})
        for a in anns:
            m = api.annToMask(a)                                            # pycocotools' decoder
            assert np.array_equal(m.astype(bool), png == a['instance_id'])
            rle = dict(size=a['segmentation']['size'], counts=a['segmentation']['counts'].encode())
            assert a['area'] == int(mu.area(rle)) and np.allclose(a['bbox'], mu.toBbox(rle))
            assert 0.5 < a['score'] <= 1 and a['iscrowd'] == 0 and a['category_id'] == 1
            # pycocotools' own encoder writes the same string
            assert mu.encode(np.asfortranarray((png == a['instance_id']).astype(np.uint8)))['counts'].decode() == a['segmentation']['counts']
        n_ann += len(anns)
    assert n_ann == len(coco['annotations']) > 0
    # without a head every pixel belongs to a slot and every score is 1.0
    predict(job, src, tmp_path / 'out0', variant='dinosaur', progress=False, overlays=False)
    c0 = json.loads((tmp_path / 'out0' / 'coco.json').read_text())
    assert {a['score'] for a in c0['annotations']} == {1.0}
    assert sum(a['area'] for a in c0['annotations'] if a['image_id'] == 1) == frames[0].shape[0] * frames[0].shape[1]


JOB = """
import sys
from mrdino.predict import predict
predict(sys.argv[1], sys.argv[2], sys.argv[3], variant='only_stage2', batch=2, progress=False)
"""


def test_kill_and_resume_is_byte_identical(job, video, tmp_path):
    before = digest(video.parent)
    ref = tmp_path / 'ref'
    predict(job, video, ref, variant='only_stage2', batch=2, progress=False)
    out = tmp_path / 'out'
    p = subprocess.Popen([sys.executable, '-c', JOB, str(job), str(video), str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    while not len(list((out / '.parts').rglob('*.json'))) >= 2:
        assert p.poll() is None, p.stderr.read().decode()[-2000:]
        assert time.time() - t0 < 300; time.sleep(0.02)
    p.send_signal(signal.SIGKILL); p.wait()
    assert json.loads((out / 'run.json').read_text())['status'] == 'running'      # killed part-way
    n_done = len(list((out / 'masks').rglob('*.png')))
    assert 0 < n_done < N_FRAMES and not (out / 'coco.json').exists()
    r = predict(job, video, out, variant='only_stage2', batch=2, progress=False)
    assert r['time']['frames_this_call'] <= N_FRAMES - 4                           # the two finished batches were not redone
    a, b = tree(ref), tree(out)
    assert sorted(a) == sorted(b) and len(a) == N_FRAMES + 3                        # masks, coco.json, one .mp4, run.json
    assert [k for k in a if a[k] != b[k]] == ['run.json']
    ja, jb = json.loads(a['run.json']), json.loads(b['run.json'])
    ja.pop('time'), jb.pop('time')
    assert ja == jb
    cap = cv2.VideoCapture(str(out / 'overlays' / 'street.mp4'))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
    assert digest(video.parent) == before                                           # source untouched


def test_source_untouched_and_output_inside_source_refused(job, frames, tmp_path, capsys):
    src = folder(frames[:4], tmp_path / 'frames')
    before = {p: (p.stat().st_mtime_ns, h) for p, h in ((tmp_path / 'frames' / k, v) for k, v in digest(src).items())}
    rc = main(['predict', str(job), str(src), str(src / 'pred'), '--variant', 'dinosaur'])
    assert rc == 2 and 'inside the source folder' in capsys.readouterr().err
    assert not (src / 'pred').exists()
    rc = main(['predict', str(job), str(src), str(tmp_path / 'pred'), '--variant', 'dinosaur', '--batch', '3'])
    assert rc == 0 and len(list((tmp_path / 'pred' / 'masks').rglob('*.png'))) == 4
    assert {p: (p.stat().st_mtime_ns, h) for p, h in ((tmp_path / 'frames' / k, v) for k, v in digest(src).items())} == before


def test_bad_frame_reported_and_skipped(job, frames, tmp_path, capsys):
    src = folder(frames[:6], tmp_path / 'frames', bad=3)
    r = predict(job, src, tmp_path / 'out', variant='only_stage2', batch=4, progress=True)
    assert [(s['index'], '000003.png' in s['error']) for s in r['frames']['skipped']] == [(3, True)]
    assert 'skipped' in capsys.readouterr().err and r['frames']['written'] == 5
    names = sorted(p.name for p in (tmp_path / 'out' / 'masks' / 'frames').iterdir())
    assert names == [f'{t:06d}.png' for t in (0, 1, 2, 4, 5)]
    coco = json.loads((tmp_path / 'out' / 'coco.json').read_text())
    assert [i['frame_index'] for i in coco['images']] == [0, 1, 2, 4, 5]
    cap = cv2.VideoCapture(str(tmp_path / 'out' / 'overlays' / 'frames.mp4'))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_predict_on_a_protocol_canvas_prepares_windows_as_evaluate(one_thread):
    # `predict --resize kitti` must feed the model what `evaluate` (and the authors' release) feeds it: the float,
    # non-antialiased bicubic resize of `reference_windows`, not mrdino's resize through uint8 (which rounds every
    # pixel to 1/255); other canvases keep mrdino's own windows
    import torch
    from mrdino.dinosaur import Dinosaur, DinosaurConfig, to_images
    from mrdino.windows import predict_windows, reference_windows, cut_windows, frame_windows
    from mrdino.predict import segment_frames
    cfg = DinosaurConfig.preset('kitti', encoder_weights='random', n_slots=3, decoder_hidden=16,
                                encoder_arch=dict(embed_dim=16, depth=1, num_heads=2))
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 255, (750, 2484, 3), dtype=np.uint8) for _ in range(2)]   # twice KITTI's size
    x, lays = frame_windows(cfg, imgs, 'kitti')
    want = np.concatenate([reference_windows(im, 'kitti', 378)[0] for im in imgs])    # (8, 378, 378, 3)
    np.testing.assert_array_equal(x.permute(0, 2, 3, 1).numpy(), want)
    assert len(lays) == 2 and lays[0].origins == [(0, -126), (0, 252), (0, 630), (0, 1008)]
    mine = to_images(np.concatenate([cut_windows(im, 378, (378, 1260))[1] for im in imgs]))
    assert not torch.equal(mine, x)                                   # the two preparations do differ on this image
    torch.testing.assert_close(frame_windows(cfg, imgs, 'preset')[0], mine, rtol=0, atol=0)
    torch.manual_seed(0)
    model = Dinosaur(cfg).eval()                                      # and segment_frames runs on them end to end
    (lab, lam, lay), = segment_frames(model, imgs[:1], None, resize='kitti', seed=2, merge_thr=None)
    ref = predict_windows(model, imgs[0], seed=2, merge_thr=None, protocol='kitti')
    assert lam is None and lay.origins == ref.layout.origins and lab.shape == (378, 1260)


def test_a_changed_source_frame_is_not_taken_for_the_finished_run(job, frames, tmp_path):
    # a frame replaced by another image of the same byte size, its time set back: sizes and times alone would call
    # the source unchanged; its bytes differ, so the finished run is not reused for it
    import os
    from mrdino.predict import predict
    src = folder(frames[:3], tmp_path / 'frames')
    predict(str(job), str(src), tmp_path / 'pred', variant='dinosaur', overlays=False, progress=False)
    f = src / '000001.png'
    st, data = f.stat(), bytearray(f.read_bytes())
    data[-20] ^= 0xFF                                               # one byte inside the last chunk: same size
    f.write_bytes(bytes(data)); os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(ValueError, match=r'other settings \(differing: source\)'):
        predict(str(job), str(src), tmp_path / 'pred', variant='dinosaur', overlays=False, progress=False)
