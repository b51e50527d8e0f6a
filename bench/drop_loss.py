"""Can the drop loss act on a run's world? Measures, on the held-out frames of a finished synthetic main-job run, the
slots the stage-2 base model (stage 1) gives to parked objects, moving objects and background, and prints a table:

- the share of each kind of slot whose largest cosine similarity to a moving-object slot of the same batch is at
  least tau_drop (0.99): only such unmatched slots are dropped from L_bg, so only they could be spared by the drop
  loss (the moving-object slots stand in for the slots stage 2 matches to motion pseudo-labels; a batch is 8
  windows, as in training);
- the mean λ and the share of active slots (λ > 0.5) under the head trained with the drop loss (`stage2`) and the one
  trained without it (`no_drop_loss`).

A slot belongs to the GT object (or background) that covers most of its segment (its argmax pixels in the window);
slots with an empty segment are left out. Parked and moving come from the synthetic videos' ground truth.

    .venv/bin/python bench/drop_loss.py runs/demo
"""
import argparse

import numpy as np
import torch
import torch.nn.functional as F

from mrdino.windows import predict_windows
from mrdino.stage2 import load_head
from stage2_oracle import job_of, window_objects


def slot_kinds(masks, objs, parked):
    "(K,) 'parked', 'moving', 'background' or '' (empty segment) for the slots of one window: who covers most of each segment."
    seg = masks.argmax(0)                                           # (crop, crop) slot of each pixel
    kinds = np.full(len(masks), '', object)
    for k in range(len(masks)):
        on = seg == k
        if not on.any(): continue
        i = int(objs[:, on].sum(1).argmax())                       # the GT object (0: background) covering most of it
        kinds[k] = 'background' if i == 0 else ('parked' if parked[i - 1] else 'moving')
    return kinds


def best_moving_similarity(S, kinds):
    "(B, K) largest cosine similarity of each slot to the batch's moving-object slots (for a moving slot: to the others)."
    unit = F.normalize(torch.as_tensor(S).float(), dim=-1).flatten(0, 1)   # (B·K, D)
    mov = np.flatnonzero(np.asarray(kinds).ravel() == 'moving')     # the stand-ins for matched slots
    if len(mov) == 0: return np.full(np.shape(kinds), -1.0)
    sim = (unit @ unit[mov].T).numpy()
    sim[mov, np.arange(len(mov))] = -1.0                            # not itself
    return sim.max(1).reshape(np.shape(kinds))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run', help='out_dir of a finished synthetic main job (mrdino demo)')
    ap.add_argument('--tau-drop', type=float, default=None, help="similarity threshold (default: the run's stage-2 setting)")
    ap.add_argument('--batch', type=int, default=8, help='windows per batch for the similarity (stage 2 trains on 8)')
    a = ap.parse_args()
    job = job_of(a.run)
    tau = a.tau_drop if a.tau_drop is not None else job.s2cfg.tau_drop
    model = job.model('stage1')
    heads = {n: load_head(job.out / n, job.device)[0] for n in ('stage2', 'no_drop_loss')}
    slots, kinds = [], []                                           # per window: (K, D) slots, (K,) kind of each slot
    for v in job.eval_videos():
        if not hasattr(v, 'parked'): raise SystemExit(f"{v.name} has no parked/moving ground truth: use a synthetic run")
        for t in range(0, len(v), job.eval_every):
            f = v[t]
            wp = predict_windows(model, f.image, seed=job.seed, merge_thr=None)
            if tuple(wp.layout.size) != f.gt.shape: raise SystemExit(f"canvas {wp.layout.size} is not the frame {f.gt.shape}")
            objs = window_objects(f.gt, wp.layout)                  # (nW, n+1, crop, crop), channel 0 = background
            for w in range(len(wp.masks)):
                slots.append(wp.slots[w]); kinds.append(slot_kinds(wp.masks[w], objs[w], v.parked))
    rows = {k: dict(n=0, spared=0, **{h: [] for h in heads}) for k in ('parked', 'moving', 'background')}
    for s in range(0, len(slots), a.batch):
        S = torch.from_numpy(np.stack(slots[s:s + a.batch])).float()            # (B, K, D)
        kd = np.stack(kinds[s:s + a.batch])                                     # (B, K)
        best = best_moving_similarity(S, kd)
        with torch.no_grad(): lam = {h: m(S).numpy() for h, m in heads.items()}
        for kind, r in rows.items():
            sel = kd == kind
            r['n'] += int(sel.sum()); r['spared'] += int((best[sel] >= tau).sum())
            for h in heads: r[h] += list(lam[h][sel])
    print(f"run {a.run}: stage-1 slots on {sum(len(k) for k in kinds)} window slots of the held-out frames, tau_drop {tau}, batches of {a.batch} windows")
    print(f"{'slots on':12s} {'count':>6s} {'sim >= tau':>11s} {'mean λ drop':>12s} {'mean λ no drop':>15s} {'active drop':>12s} {'active no drop':>15s}")
    for kind, r in rows.items():
        if not r['n']: continue
        ld, ln = np.array(r['stage2']), np.array(r['no_drop_loss'])
        print(f"{kind:12s} {r['n']:6d} {100 * r['spared'] / r['n']:10.1f}% {ld.mean():12.3f} {ln.mean():15.3f} "
              f"{100 * (ld > 0.5).mean():11.1f}% {100 * (ln > 0.5).mean():14.1f}%")


if __name__ == '__main__':
    main()
