"""How far can slot deactivation go on a finished main-job run? Scores the run's DINOSAUR and stage-1 models on the
evaluation frames three ways and prints a table:

- all slots: every slot is a segment (the DINOSAUR / + stage 1 rows of Tab. 3a);
- oracle, mostly on objects: a slot stays active iff most pixels of its all-slots segment lie on GT objects;
- oracle, IoU > 0.5: a slot stays active iff its all-slots segment matches a GT object at IoU > 0.5.

The oracles read the ground truth, so no stage 2 trained from pseudo-labels should beat them by much; inference is
the stage-2 rule (inactive slots zeroed, a background channel 1 − Σ active masks competes in the argmax, then the
border merger). "selection ceiling" is 2R/(1+R) for the all-slots recall R: the F1 of keeping exactly the segments
that match an object and nothing else.

Two ceilings that no slot model with this window grid can pass, whatever its encoder (`--ceilings`):

- patch grid: each GT object's mask is area-averaged onto the windows' patch grid and upsampled bilinearly, as the
  alpha masks are, and objects compete with the background in the argmax; objects keep their id across windows
  (a perfect border merger). This is what perfect patch-level masks score.
- free slots, frozen decoder: per window, K slot vectors are fitted directly to the window's GT objects (Hungarian
  matching, the stage-1 loss, Adam) through the run's frozen DINOSAUR decoder. Stage 1 trains only what produces
  the slots, so even with perfect pseudo-labels it can only do about this well (the fit is a local optimum per
  window: an estimate of that ceiling, not a proof).

The run is scored as it was made: preset, data, evaluation data and seed come from its `done.json` files, and each
model is loaded with the encoder its checkpoint names.

    .venv/bin/python bench/stage2_oracle.py runs/demo [--ceilings]
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mrdino.stage1 import upsample_masks, match_masks, stage1_loss
from mrdino.pipeline import MainJob
from mrdino.dinosaur import load_dinosaur
from mrdino.windows import predict_windows, join_windows, segment_windows
from mrdino.metrics import score_pair, evaluate_masks, get_protocol, gt_objects, nearest_resize


def oracle_lambdas(lab, C, g, shape):
    "(nW, K) λ of the two oracles from the all-slots canvas labels `lab` and the canvas GT `g`."
    mostly, iou = np.zeros(shape), np.zeros(shape)
    for c in np.unique(lab):
        w, k = divmod(int(c), C)
        seg = lab == c
        mostly[w, k] = float((g[seg] > 0).mean() > 0.5)
        ids, cnt = np.unique(g[seg], return_counts=True)
        best = max((cnt[i] / (seg | (g == ids[i])).sum() for i in range(len(ids)) if ids[i] > 0), default=0.0)
        iou[w, k] = float(best > 0.5)
    return mostly, iou


def window_objects(g, layout):
    "(nW, n+1, crop, crop) one-hot of the canvas objects `g` (ids 1..n, 0 = background) seen by each window."
    n, cr = int(g.max()), layout.crop
    H, W = layout.size
    out = np.zeros((len(layout.origins), n + 1, cr, cr), np.float32)
    out[:, 0] = 1                                            # outside the canvas (padding) is background
    for w, (y0, x0) in enumerate(layout.origins):
        ya, yb, xa, xb = max(y0, 0), min(y0 + cr, H), max(x0, 0), min(x0 + cr, W)
        win = g[ya:yb, xa:xb]
        out[w, :, ya - y0:yb - y0, xa - x0:xb - x0] = win[None] == np.arange(n + 1)[:, None, None]
    return out


def grid_ceiling(g, layout, grid):
    "Canvas labels of perfect patch-level masks: each object's window mask area-averaged to grid², upsampled, argmax."
    onehot = torch.from_numpy(window_objects(g, layout))
    low = F.adaptive_avg_pool2d(onehot, grid)                                # exact averages: crop is grid·14
    up = F.interpolate(low, size=onehot.shape[-2:], mode='bilinear', align_corners=False).numpy()
    lab, C, _ = join_windows(up, layout)
    return (lab % C).astype(np.int32)                                        # channel = object id in every window


def decoder_ceiling(model, g, layout, steps=300, lr=0.05, seed=0):
    "Canvas labels from K free slot vectors per window fitted to the window's GT objects through the frozen decoder."
    onehot = window_objects(g, layout)
    K, D, cr = model.cfg.n_slots, model.cfg.slot_dim, layout.crop
    gen = torch.Generator().manual_seed(seed)
    H, W = layout.size
    lab = np.zeros((H, W), np.int32)
    for w, (y0, x0) in enumerate(layout.origins):
        present = [i for i in range(1, len(onehot[w])) if onehot[w, i].any()]
        ids = sorted(present, key=lambda i: -onehot[w, i].sum())[:K - 1]    # the K-1 largest, as stage 2's matching
        if not ids: continue
        target = np.zeros((cr, cr), np.int64)
        for i in ids: target[onehot[w, i] > 0] = i
        slots = model.init_slots(1, torch.randn(1, K, D, generator=gen)).detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([slots], lr=lr)
        for _ in range(steps):
            loss, _ = stage1_loss(upsample_masks(model.decoder(slots)[1], (cr, cr)), [target])
            opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad(): m = upsample_masks(model.decoder(slots)[1], (cr, cr))[0]     # (K, cr, cr)
        rows, cols = match_masks(m.flatten(1), torch.from_numpy(np.stack([target == i for i in ids])).float().flatten(1))
        obj = np.zeros(K, np.int32); obj[cols.numpy()] = np.array(ids)[rows.numpy()]      # unmatched slots -> 0
        win = obj[m.argmax(0).numpy()]
        ya, yb, xa, xb = max(y0, 0), min(y0 + cr, H), max(x0, 0), min(x0 + cr, W)
        lab[ya:yb, xa:xb] = win[ya - y0:yb - y0, xa - x0:xb - x0]
    return lab


def job_of(run):
    "The main job that made `run`, from its recorded settings (preset, data, evaluation data, encoder weights, seed)."
    done = Path(run) / 'dinosaur' / 'done.json'
    if not done.exists(): raise SystemExit(f"{run} has no finished DINOSAUR step ({done}): run the main job first")
    s = json.loads(done.read_text())['settings']
    cfg = s['config']
    kw = dict(preset=cfg['name'], data=s['data'], seed=cfg['seed'], world=s.get('world', 'street'))   # runs before worlds: street
    if cfg['encoder_weights'] not in ('standin', 'random', 'filterbank'): kw['encoder_weights'] = cfg['encoder_weights']
    ev = sorted(Path(run).glob('eval/*/done.json'))
    if ev:
        e = json.loads(ev[0].read_text())['settings']
        kw.update(eval_data=e['eval_data'], eval_every=e['every'])
    return MainJob(out_dir=str(run), progress=False, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run', help='out_dir of a finished main job (papermill nbs/05_stage2.ipynb or mrdino demo)')
    ap.add_argument('--every', type=int, default=None, help='evaluate every n-th frame (default: the run\'s eval_every)')
    ap.add_argument('--ceilings', action='store_true', help='also score the patch-grid and frozen-decoder ceilings (slower)')
    ap.add_argument('--fit-steps', type=int, default=300, help='Adam steps of the free-slot fit per window')
    a = ap.parse_args()
    torch.manual_seed(0)
    job = job_of(a.run)
    every = a.every or job.eval_every
    proto = get_protocol(job.preset)                          # each preset is scored under the protocol of its name
    print(f"{'model':9s} {'slots':37s} {'F1@50':>6s} {'AP50':>6s} {'AR50':>6s}")
    for step in ('dinosaur', 'stage1'):
        if not (job.out / step / 'done.json').exists(): continue
        model = load_dinosaur(job.out / step, device=job.device)    # with the encoder its checkpoint names
        names = ['all slots', 'oracle: mostly on objects', 'oracle: IoU > 0.5 with an object']
        ceil = a.ceilings and step == 'dinosaur'                   # stage 1 keeps the decoder: one ceiling for both
        if ceil: names += ['ceiling: perfect patch-grid masks', 'ceiling: free slots, frozen decoder']
        res = {k: ([], [], []) for k in names}
        for v in job.eval_videos():
            for t in range(0, len(v), every):
                f = v[t]
                wp = predict_windows(model, f.image, seed=job.seed, merge_thr=None)
                lab, C, _ = join_windows(wp.masks, wp.layout, None)
                H, W = wp.layout.size                              # the joined canvas (unpadded: pads lie outside)
                gw = proto.resize[1] if proto.resize else f.gt.shape[1]
                left = (W - gw) // 2
                g = np.zeros((H, W), np.int64)                    # GT objects on the canvas
                g[:, left:left + gw] = nearest_resize(gt_objects(f.gt, proto), (H, gw), 'nearest-exact')
                lams = (None,) + oracle_lambdas(lab, C, g, wp.masks.shape[:2])
                preds = [segment_windows(wp, lam) for lam in lams]
                if ceil:
                    ids = np.unique(g[g > 0])
                    gc = np.where(g > 0, np.searchsorted(ids, g) + 1, 0)   # objects 1..n on the canvas
                    preds += [grid_ceiling(gc, wp.layout, model.cfg.grid),
                              decoder_ceiling(model, gc, wp.layout, a.fit_steps, seed=job.seed + t)]
                for name, pred in zip(res, preds):
                    sp = score_pair(pred, f.gt, proto)
                    for lst, x in zip(res[name], (sp.pred, sp.gt, sp.n_gt_objects)): lst.append(x)
        for name, (p, g, n) in res.items():
            m = evaluate_masks(p, g, n_gt_objects=n)
            print(f"{step:9s} {name:37s} {100 * m['f1_50']:6.1f} {100 * m['ap_50']:6.1f} {100 * m['ar_50']:6.1f}")
            if name == 'all slots':
                r = m['ar_50']
                print(f"{step:9s} {'selection ceiling 2R/(1+R)':37s} {100 * 2 * r / (1 + r):6.1f} {100.0:6.1f} {100 * r:6.1f}")


if __name__ == '__main__':
    main()
