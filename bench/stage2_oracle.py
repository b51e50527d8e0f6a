"""How far can slot deactivation go on a finished main-job run? Scores the run's DINOSAUR and stage-1 models on the
evaluation frames three ways and prints a table:

- all slots: every slot is a segment (the DINOSAUR / + stage 1 rows of Tab. 3a);
- oracle, mostly on objects: a slot stays active iff most pixels of its all-slots segment lie on GT objects;
- oracle, IoU > 0.5: a slot stays active iff its all-slots segment matches a GT object at IoU > 0.5.

The oracles read the ground truth, so no stage 2 trained from pseudo-labels should beat them by much; inference is
the stage-2 rule (inactive slots zeroed, a background channel 1 − Σ active masks competes in the argmax, then the
border merger). "selection ceiling" is 2R/(1+R) for the all-slots recall R: the F1 of keeping exactly the segments
that match an object and nothing else.

    .venv/bin/python bench/stage2_oracle.py runs/demo
"""
import argparse

import numpy as np

from mrdino.stage2 import MainJob, EVAL_PROTOCOL, segment_windows
from mrdino.dinosaur import predict_windows, join_windows
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run', help='out_dir of a finished main job (papermill nbs/05_stage2.ipynb or mrdino demo)')
    ap.add_argument('--every', type=int, default=None, help='evaluate every n-th frame (default: the run\'s eval_every)')
    a = ap.parse_args()
    job = MainJob(out_dir=a.run, progress=False)
    every = a.every or job.eval_every
    proto = get_protocol(EVAL_PROTOCOL[job.preset])
    print(f"{'model':9s} {'slots':32s} {'F1@50':>6s} {'AP50':>6s} {'AR50':>6s}")
    for step in ('dinosaur', 'stage1'):
        if not (job.out / step / 'done.json').exists(): continue
        model = job.model(step)
        res = {k: ([], [], []) for k in ('all slots', 'oracle: mostly on objects', 'oracle: IoU > 0.5 with an object')}
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
                for name, lam in zip(res, lams):
                    sp = score_pair(segment_windows(wp, lam), f.gt, proto)
                    for lst, x in zip(res[name], (sp.pred, sp.gt, sp.n_gt_objects)): lst.append(x)
        for name, (p, g, n) in res.items():
            m = evaluate_masks(p, g, n_gt_objects=n)
            print(f"{step:9s} {name:32s} {100 * m['f1_50']:6.1f} {100 * m['ap_50']:6.1f} {100 * m['ar_50']:6.1f}")
            if name == 'all slots':
                r = m['ar_50']
                print(f"{step:9s} {'selection ceiling 2R/(1+R)':32s} {100 * 2 * r / (1 + r):6.1f} {100.0:6.1f} {100 * r:6.1f}")


if __name__ == '__main__':
    main()
