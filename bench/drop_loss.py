"""Can the drop loss act on a run's world? Measures, on the held-out frames of a finished synthetic main-job run, the
slots the stage-2 base model (stage 1) gives to parked objects, moving objects and background, and prints a table:

- the share of each kind of slot whose largest cosine similarity to a moving-object slot of the same batch is at
  least tau_drop (0.99): only such unmatched slots are dropped from L_bg, so only they could be spared by the drop
  loss (the moving-object slots stand in for the slots stage 2 matches to motion pseudo-labels; a batch is 8
  windows, as in training);
- the mean λ and the share of active slots (λ > 0.5) under the head trained with the drop loss (`stage2`) and the one
  trained without it (`no_drop_loss`).

A second table replays stage 2's own training steps (the run's windows, batches in the training order, the loss's
matching to the pseudo-labels) and sorts every *unmatched* slot by the GT object under its segment: how many the drop
loss takes out of `L_bg` per step (this equals the `dropped` column of `stage2/log.csv`), the distribution of their
largest cosine similarity to the batch's matched slots, and λ under both heads. Only unmatched slots on parked objects
are ones the drop loss is meant to spare.

A slot belongs to the GT object (or background) that covers most of its segment (its argmax pixels in the window);
slots with an empty segment are left out. Parked and moving come from the synthetic videos' ground truth.

    .venv/bin/python bench/drop_loss.py runs/demo
"""
import argparse
import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mrdino.windows import predict_windows
from mrdino.stage1 import training_windows, instance_masks, match_masks, upsample_masks
from mrdino.stage2 import load_head, slots_and_masks, _keep_for_matching
from mrdino.pseudolabels import read_instances
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


def training_gt(job):
    "(frames, pseudo-labels, GT instance maps, parked flags per frame) of the frames stage 2 trained on, in the run's order."
    root = job.out / 'pseudolabels' / Path(job.pseudo_labels()['out']).name
    seqs = {s.name: s for s in job.videos()}
    frames, labels, gts, parked = [], [], [], []
    with open(root / 'index.csv') as f:
        for r in csv.DictReader(f):                                 # the rule of `MainJob.labelled_frames`
            if r['verdict'] == 'labelled' and int(r['instances'] or 0) > 0:
                v, t = seqs[r['sequence']], int(r['frame'])
                if not hasattr(v, 'parked'): raise SystemExit(f"{v.name} has no parked/moving ground truth: use a synthetic run")
                frames.append(v[t].image); labels.append(read_instances(root / r['label'])); gts.append(v.instances[t]); parked.append(v.parked)
    return frames, labels, gts, parked


def matched_slots(m, labels, K):
    "(B, K) bool: the slots stage 2's loss matches to the windows' pseudo masks (alpha masks `m` (B, K, N))."
    out = torch.zeros(m.shape[:2], dtype=torch.bool)
    for b, lab in enumerate(labels):
        p = _keep_for_matching(instance_masks(lab).flatten(1), K)
        if len(p): out[b, match_masks(m[b], p)[1]] = True
    return out


def training_steps(job, heads, tau):
    "Replay stage 2's training batches: per unmatched slot its kind, largest similarity to the matched slots, λ per head; drops per step."
    frames, labels, gts, parked = training_gt(job)
    w, l, org = training_windows(frames, labels, job.s1cfg)
    if tuple(job.s1cfg.resize) != gts[0].shape: raise SystemExit(f"frames are resized for training ({gts[0].shape} -> {job.s1cfg.resize}): GT windows would not line up")
    crop = job.s1cfg.crop
    cfg = replace(job.s2cfg, **{k: v for k, v in json.loads((job.out / 'stage2' / 'done.json').read_text())['settings']['stage2'].items()
                                 if k in ('epochs', 'max_steps', 'batch_size', 'seed')})   # the steps the run made
    gw = np.stack([gts[i][:crop, x:x + crop] for i, x in org])      # (N, crop, crop) GT of each window
    model = job.model('stage1')
    slots, masks = slots_and_masks(model, job._feats(model), cfg.seed)
    K, N, B = slots.shape[1], len(w), cfg.batch_size
    per_epoch = math.ceil(N / B)
    total = per_epoch * cfg.epochs if cfg.max_steps is None else min(per_epoch * cfg.epochs, cfg.max_steps)
    out = dict(kind=[], sim=[], **{h: [] for h in heads}); drops = []
    for step in range(total):                                       # the order of `train_stage2`
        epoch, i = divmod(step, per_epoch)
        idx = torch.randperm(N, generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))[i * B:(i + 1) * B]
        m = upsample_masks(masks[idx], (crop, crop))
        mt = matched_slots(m.flatten(2), [l[j] for j in idx.tolist()], K)
        unit = F.normalize(slots[idx], dim=-1)
        sim = (unit @ unit[mt].T).amax(-1) if mt.any() else torch.full(mt.shape, -1.0)   # (B, K) as the loss computes it
        with torch.no_grad(): lam = {h: hd(slots[idx]).numpy() for h, hd in heads.items()}
        drops.append(int((~mt & (sim >= tau)).sum()))
        for b, j in enumerate(idx.tolist()):
            g = gw[j]; n = int(g.max())
            objs = (g[None] == np.arange(n + 1)[:, None, None]).astype(np.float32)
            pk = parked[org[j][0]]
            kd = slot_kinds(m[b].numpy(), objs, pk)
            for k in np.flatnonzero(~mt[b].numpy()):
                out['kind'].append(kd[k] or 'empty'); out['sim'].append(float(sim[b, k]))
                for h in heads: out[h].append(float(lam[h][b, k]))
    return {k: np.array(v) for k, v in out.items()}, np.array(drops), total


def print_training(st, drops, total, tau):
    print(f"stage-2 training replay: {total} steps, unmatched slots dropped from L_bg per step: mean {drops.mean():.2f}, "
          f"max {drops.max()}, steps with a drop {100 * (drops > 0).mean():.0f}%")
    print(f"{'unmatched on':12s} {'count':>6s} {'per step':>9s} {'dropped':>8s} {'sim p10':>8s} {'p50':>6s} {'p90':>6s} {'max':>6s} "
          f"{'>=0.95':>7s} {'mean λ drop':>12s} {'mean λ no drop':>15s}")
    for kind in ('parked', 'moving', 'background', 'empty'):
        sel = st['kind'] == kind
        if not sel.any(): continue
        s = st['sim'][sel]
        q = np.percentile(s, [10, 50, 90])
        print(f"{kind:12s} {sel.sum():6d} {sel.sum() / total:9.2f} {100 * (s >= tau).mean():7.1f}% {q[0]:8.3f} {q[1]:6.3f} {q[2]:6.3f} "
              f"{s.max():6.3f} {100 * (s >= 0.95).mean():6.1f}% {st['stage2'][sel].mean():12.3f} {st['no_drop_loss'][sel].mean():15.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run', help='out_dir of a finished synthetic main job (mrdino demo)')
    ap.add_argument('--tau-drop', type=float, default=None, help="similarity threshold (default: the run's stage-2 setting)")
    ap.add_argument('--batch', type=int, default=8, help='windows per batch for the similarity (stage 2 trains on 8)')
    ap.add_argument('--no-training', action='store_true', help="skip the replay of stage 2's training steps")
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
    if not a.no_training:
        print()
        print_training(*training_steps(job, heads, tau), tau)


if __name__ == '__main__':
    main()
