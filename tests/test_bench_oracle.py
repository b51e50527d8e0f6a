"""The oracle slot selection of bench/stage2_oracle.py, on a hand-made canvas whose answer is worked out below."""
import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location('bench_stage2_oracle', Path(__file__).resolve().parent.parent / 'bench' / 'stage2_oracle.py')
oracle = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(oracle)


def test_oracle_lambdas():
    C = 3                                                  # 2 windows × 3 slots; channel = window * 3 + slot
    lab = np.zeros((4, 8), int)
    lab[0:2, 0:4] = 0                                      # w0 s0: 8 px, exactly GT object 1
    lab[2:4, 0:2] = 1                                      # w0 s1: left half of object 2
    lab[2:4, 2:4] = 2                                      # w0 s2: right half of object 2
    lab[:, 4:8] = 3                                        # w1 s0: 16 px, 3 of them on object 3; w1 s1, s2 draw nothing
    g = np.zeros((4, 8), int)
    g[0:2, 0:4] = 1; g[2:4, 0:4] = 2; g[0, 4:7] = 3
    mostly, iou = oracle.oracle_lambdas(lab, C, g, (2, 3))
    # s0: all on object 1, IoU 1 → both keep it; s1, s2: all on object 2 but IoU 4/8 = 0.5 (not > 0.5) → only
    # "mostly" keeps them; w1 s0: 3/16 on an object → neither; empty slots → neither
    np.testing.assert_array_equal(mostly, [[1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(iou, [[1, 0, 0], [0, 0, 0]])


def _canvas():
    "28×56 canvas = two 28-px windows of a 2×2 patch grid (14-px patches); answer worked out in the tests."
    from mrdino.windows import window_layout
    g = np.zeros((28, 56), int)
    g[:, 0:14] = 1                      # left patch column of window 0
    g[:, 14:42] = 2                     # right patch column of window 0 + left patch column of window 1
    g[20:24, 46:50] = 3                 # 16 px inside one patch of window 1: 16/196 of it
    return g, window_layout(28, 56, 28)


def test_grid_ceiling():
    g, lay = _canvas()
    lab = oracle.grid_ceiling(g, lay, 2)
    # a patch-aligned column stays exact: after bilinear upsampling the object's weight is 1 − (x − 6.5)/14 across
    # the window, > 0.5 up to x = 13 and < 0.5 from x = 14, so objects 1 and 2 come back pixel for pixel and 2 keeps
    # its id across the border; object 3 averages to 16/196 < background's 180/196 everywhere and vanishes
    want = np.zeros_like(g); want[:, 0:14] = 1; want[:, 14:42] = 2
    np.testing.assert_array_equal(lab, want)


class _PatchDecoderModel:
    "A decoder that can draw any patch-level mask: alpha logits = 10 × slot vector (D = P patches)."
    class cfg: n_slots, slot_dim, grid = 3, 4, 2
    def init_slots(self, B, noise): return noise
    def decoder(self, slots): return None, (10 * slots).softmax(1)


def test_decoder_ceiling_recovers_what_the_decoder_can_draw():
    import torch
    torch.manual_seed(0)
    g, lay = _canvas()
    lab = oracle.decoder_ceiling(_PatchDecoderModel(), g, lay, steps=200, lr=0.1)
    # window 0 holds objects 1 and 2 (one patch column each), window 1 objects 2 and 3; the 3 slots fit the
    # K − 1 = 2 largest of each window; object 3 (16 px) gets a slot, but the weighted-BCE optimum of that slot's
    # alpha on its patch is about 2·16 / (2·16 + 180) ≈ 0.15 (positives weigh 2 − r), so it loses every argmax;
    # 1 and 2 come back as their patch columns, 2 under one id across the border
    want = np.zeros_like(g); want[:, 0:14] = 1; want[:, 14:42] = 2
    # (the fit is soft, so a few pixels at the 2/background edge may go either way)
    assert (lab == want).mean() > 0.98
    np.testing.assert_array_equal(lab[:, :14], 1)
    assert not (lab == 3).any()


def test_job_of_reads_the_runs_settings(tmp_path):
    # the bench must score a run with the encoder, data and evaluation settings the run was made with, not the
    # defaults: a run trained on user weights scored with the stand-in encoder would give meaningless numbers
    import json
    from safetensors.numpy import save_file
    weights = tmp_path / 'w.safetensors'; save_file({'x': np.zeros(1, np.float32)}, str(weights))   # MainJob checks it is a weight file
    (tmp_path / 'dinosaur').mkdir(); (tmp_path / 'eval' / 'stage1').mkdir(parents=True)
    cfg = dict(name='synthetic', encoder_weights=str(weights), seed=3)
    (tmp_path / 'dinosaur' / 'done.json').write_text(json.dumps(dict(settings=dict(config=cfg, data='synthetic:2'))))
    (tmp_path / 'eval' / 'stage1' / 'done.json').write_text(json.dumps(dict(settings=dict(eval_data='synthetic-eval:1', every=7))))
    job = oracle.job_of(tmp_path)
    assert (job.preset, job.data, job.seed, job.encoder_weights) == ('synthetic', 'synthetic:2', 3, str(weights))
    assert (job.eval_data, job.eval_every) == ('synthetic-eval:1', 7)
    assert job.dcfg.encoder_weights == str(weights)
    cfg['encoder_weights'] = 'standin'                     # the preset's own stand-in: no weight file to pass
    (tmp_path / 'dinosaur' / 'done.json').write_text(json.dumps(dict(settings=dict(config=cfg, data='synthetic:2'))))
    assert oracle.job_of(tmp_path).dcfg.encoder_weights == 'standin'
    assert oracle.job_of(tmp_path).world == 'street'       # runs recorded before worlds existed are street runs
    cfg['encoder_weights'] = 'filterbank'                  # the objects world's weight-free stand-in
    (tmp_path / 'dinosaur' / 'done.json').write_text(json.dumps(dict(settings=dict(config=cfg, data='synthetic:2', world='objects'))))
    job = oracle.job_of(tmp_path)
    assert (job.world, job.dcfg.encoder_weights) == ('objects', 'filterbank')
