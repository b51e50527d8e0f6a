"""The paper configurations end to end (issue #13), slow: the main job with preset kitti / tri_pd — the ViT-B/14
architecture loaded from a saved random torch.hub-layout weight file, 378-px (490-px) windows, 15 (30) slots, the
2048-wide decoder — on tiny KITTI-raw + KITTI-2015 (TRI-PD) fixtures, a few steps per stage, on the CPU.

Skipped unless MRDINO_TEST_FLAGS contains 'slow' (as the notebooks' slow cells), e.g.
`MRDINO_TEST_FLAGS=slow nice -n 10 .venv/bin/python -m pytest tests/test_paper_presets_slow.py`."""
import json, os, time
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from mrdino.worlds import make_street_video
from mrdino.pipeline import MainJob, VARIANTS

from test_reference_ckpt import hub_state_dict
from test_reference_eval import kitti2015_fixture

pytestmark = pytest.mark.skipif('slow' not in os.environ.get('MRDINO_TEST_FLAGS', ''), reason="slow: set MRDINO_TEST_FLAGS=slow")


def vitb14_hub_file(path):
    "Random DINOv2 ViT-B/14 weights (768-d, 12 blocks, 37x37 position grid) in the torch.hub layout."
    torch.save(hub_state_dict(dim=768, depth=12, grid=37, seed=0), path)
    return path


def write_frames(d, frames):
    d.mkdir(parents=True, exist_ok=True)
    for t, f in enumerate(frames): cv2.imwrite(str(d / f'{t:010d}.png'), f[..., ::-1])


def small_steps(job, n_windows):
    "A few steps per stage (small batches, the first `n_windows` stage-1/2 training windows); the architecture stays the preset's."
    job.dcfg = replace(job.dcfg, batch_size=1, cache_stride=882 if job.preset == 'kitti' else 490, hflip=False)
    job.s1cfg = replace(job.s1cfg, batch_size=2)
    windows = job.windows
    def first_windows():
        w, l = windows()
        assert len(w) >= n_windows, len(w)                     # the pseudo-labels gave at least this many windows
        return w[:n_windows], l[:n_windows]
    job.windows = first_windows
    return job


def run_and_check(job, crop, n_slots, n_patches):
    t0 = time.time()
    res = job.evaluate()
    secs = time.time() - t0
    assert set(res) == set(VARIANTS)
    for v, r in res.items():
        assert r['frames'] >= 1 and all(0 <= r[k] <= 1 for k in ('f1_50', 'ap_50', 'ar_50')), (v, r)
    m = job.model('stage1')
    assert (m.cfg.crop, m.cfg.n_slots, m.cfg.slot_dim, m.cfg.decoder_hidden, m.cfg.encoder) == (crop, n_slots, 32, 2048, 'vit_base_patch14_dinov2')
    assert (m.encoder.dim, m.encoder.n_patches, len(m.encoder.vit.blocks)) == (768, n_patches, 12)
    assert 'hub layout' in m.encoder.description and 'stand-in' not in m.encoder.description
    assert json.loads((job.out / 'results.json').read_text()) == json.loads(json.dumps(res))
    print(f"main job {job.preset}: {secs:.0f} s")
    return res


def test_main_job_kitti_preset(tmp_path):
    v = make_street_video(0, n_frames=7)                          # still camera, moving cars: pseudo-labels
    write_frames(tmp_path / 'raw' / '2011_09_26' / '2011_09_26_drive_0001_sync' / 'image_02' / 'data', v.frames)
    k15 = kitti2015_fixture(tmp_path / 'kitti_2015', n=1)
    job = small_steps(MainJob('kitti', str(tmp_path / 'raw'), str(k15), str(vitb14_hub_file(tmp_path / 'dinov2_vitb14_pretrain.pth')),
                              'cpu', str(tmp_path / 'run'), baseline_steps=2, stage1_epochs=1, stage2_epochs=1, eval_every=1,
                              progress=False), 4)
    run_and_check(job, 378, 15, 27 * 27)


def test_main_job_tri_pd_preset(tmp_path):
    v = make_street_video(0, n_frames=7)
    write_frames(tmp_path / 'pd' / 'scene_000001' / 'rgb' / 'camera_01', v.frames)
    rng = np.random.default_rng(1)                                # TRI-PD test scene 480x968 with ari_masks
    img = (rng.random((480, 968, 3)) * 60 + 80).astype(np.uint8)
    gt = np.zeros((480, 968), np.uint16)
    for j, (y, x) in enumerate([(200, 100), (260, 500), (300, 800)]):
        img[y:y + 60, x:x + 100] = rng.integers(0, 255, 3); gt[y:y + 60, x:x + 100] = j + 1
    write_frames(tmp_path / 'pd_test' / 'scene_000100' / 'rgb' / 'camera_01', [img])
    (tmp_path / 'pd_test' / 'scene_000100' / 'ari_masks' / 'camera_01').mkdir(parents=True)
    cv2.imwrite(str(tmp_path / 'pd_test' / 'scene_000100' / 'ari_masks' / 'camera_01' / f'{0:010d}.png'), gt)
    job = small_steps(MainJob('tri_pd', str(tmp_path / 'pd'), str(tmp_path / 'pd_test'),
                              str(vitb14_hub_file(tmp_path / 'dinov2_vitb14_pretrain.pth')), 'cpu', str(tmp_path / 'run'),
                              baseline_steps=2, stage1_epochs=1, stage2_epochs=1, eval_every=1, progress=False), 2)
    run_and_check(job, 490, 30, 35 * 35)
