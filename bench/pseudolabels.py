"""Flow → instance pseudo-labels: per-frame time of a straightforward transcription of the reference vs
mrdino's exact and fast modes, the job's throughput, and (with --quality) pseudo-label quality vs GT.

    .venv/bin/python bench/pseudolabels.py             # timing table + job frames/s
    .venv/bin/python bench/pseudolabels.py --quality   # + quality table (paper Tab. 4 style), several minutes
    .venv/bin/python bench/pseudolabels.py --video vtest.avi   # + timing on a real video's DIS flows

`straightforward_instances` is the independent reference the tests compare against (tests/oracle_pseudolabels.py):
it does what the reference release does, step by step, on full frames. It shares no code with
`mrdino.instances`. Timings are wall-clock on a shared machine under load: read the ratios, not the digits.
"""
import argparse, sys, tempfile, time
from pathlib import Path

import numpy as np
import joblib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'tests'))
from oracle_pseudolabels import straightforward_instances, toy_kitti_flow   # the reference oracle the tests use


def bench_frames(n_street=3):
    "KITTI-size flows: hand-made noisy frames, synthetic street frames with exact flow and with DIS flow."
    from mrdino.worlds import make_street_video
    from mrdino.flow import get_backend
    dis = get_backend('dis')
    frames = [('toy noise 0.3', toy_kitti_flow(0, 0.3)), ('toy noise 0.6', toy_kitti_flow(1, 0.6))]
    for s in range(n_street):
        v = make_street_video(seed=s, height=376, width=1240, n_frames=6)
        t = int(np.flatnonzero(~v.camera_moving)[0])
        frames.append((f'street{s} t{t} exact flow', v.flow[t]))
        frames.append((f'street{s} t{t} DIS flow', dis(v.frames[t], v.frames[t + 1])))
    return frames


def knn_seconds(flow, steps, cfg=None):
    """Time of hdbscan's k-NN core-distance query alone, on the components the exact mode splits, run as hdbscan runs
    it (KD-tree, leaf 40, dual-tree breadth-first, 4 chunks above 16384 points). Exact mode must run this query as is:
    the order of tied neighbours it returns seeds Borůvka's spanning tree, so t_straightforward / t_knn bounds the
    exact speed-up. `steps`: `instance_steps(flow, cfg, keep=True)`."""
    from sklearn.neighbors import KDTree
    from mrdino.instances import InstanceConfig, _features
    cfg = cfg or InstanceConfig()
    total = 0.0
    for k in steps.split:
        rr, cc = np.nonzero(steps.components == k)
        fl = np.asarray(flow, np.float32)[rr, cc]
        X = np.ascontiguousarray(_features(fl, rr, cc, cfg), np.float64)
        tree, k_nn = KDTree(X, leaf_size=40), (cfg.min_samples or cfg.min_cluster_size) + 1
        chunks = np.array_split(np.arange(len(X)), [len(X) // 4 * i for i in (1, 2, 3)]) if len(X) > 16384 else [np.arange(len(X))]
        t = time.perf_counter()
        for c in chunks: tree.query(X[c], k=k_nn, dualtree=True, breadth_first=True)
        total += time.perf_counter() - t
    return total


def video_frames(path, every=13, limit=400):
    "Forward DIS flows of every `every`-th frame of a real video (e.g. OpenCV's sample vtest.avi)."
    import cv2
    from mrdino.flow import get_backend
    cap, frames = cv2.VideoCapture(str(path)), []
    while len(frames) < limit:
        ok, f = cap.read()
        if not ok: break
        frames.append(np.ascontiguousarray(f[..., ::-1]))
    if len(frames) < 2: raise SystemExit(f"{path}: fewer than 2 frames could be read")
    dis = get_backend('dis')
    return [(f'real t{t}', dis(frames[t], frames[t + 1])) for t in range(0, len(frames) - 1, every)]


def timed(fn, *a, **k):
    t = time.perf_counter(); r = fn(*a, **k); return r, time.perf_counter() - t


def timing_table(frames, with_loky=False):
    from mrdino.instances import instance_steps, InstanceConfig, ari
    H, W = frames[0][1].shape[:2]
    print(f"\nPer-frame time, {H}×{W} flows, single process (the straightforward version's HDBSCAN core-distance "
          f"chunks run in-process too){' ; loky = hdbscan default with 4 worker processes' if with_loky else ''}")
    head = (f"{'frame':26s} {'comps':>5s} {'split px':>8s} | {'straightfwd ms':>14s}"
            + (f" {'(loky) ms':>10s}" if with_loky else '') +
            f" {'exact ms':>9s} {'fast ms':>8s} | {'exact ×':>7s} {'fast ×':>7s} | {'k-NN ms':>7s} {'bound ×':>7s} | {'same':>5s} {'ARI fast':>8s} {'fg-ARI':>7s}")
    print(head); print('-' * len(head))
    tot = np.zeros(4)
    for name, f in frames:
        with joblib.parallel_config(backend='sequential'):
            ref, t_ref = timed(straightforward_instances, f)
        t_loky = timed(straightforward_instances, f)[1] if with_loky else None
        ex, t_ex = timed(instance_steps, f)
        fa, t_fa = timed(instance_steps, f, InstanceConfig(mode='fast'))
        m = (ex.instances > 0) | (fa.instances > 0)
        fg_ari = ari(ex.instances[m], fa.instances[m]) if m.any() else 1.0
        kept = instance_steps(f, keep=True) if ex.split else None          # components of the frame, for the columns below
        split_px = int(np.isin(kept.components, ex.split).sum()) if kept else 0
        t_knn = knn_seconds(f, kept) if kept else 0.0
        bound = f"{t_ref / t_knn:7.1f}" if t_knn else f"{'-':>7s}"
        tot += (t_ref, t_ex, t_fa, t_knn)
        print(f"{name:26s} {ex.n_components:5d} {split_px:8d} | {t_ref * 1e3:14.0f}" + (f" {t_loky * 1e3:10.0f}" if with_loky else '')
              + f" {t_ex * 1e3:9.0f} {t_fa * 1e3:8.0f} | {t_ref / t_ex:7.1f} {t_ref / t_fa:7.1f} | {t_knn * 1e3:7.0f} {bound} | "
              f"{str(np.array_equal(ref, ex.instances)):>5s} {ari(ex.instances, fa.instances):8.4f} {fg_ari:7.4f}")
    print('-' * len(head))
    print(f"{'total':26s} {'':5s} {'':8s} | {tot[0] * 1e3:14.0f}" + (f" {'':10s}" if with_loky else '')
          + f" {tot[1] * 1e3:9.0f} {tot[2] * 1e3:8.0f} | {tot[0] / tot[1]:7.1f} {tot[0] / tot[2]:7.1f} | {tot[3] * 1e3:7.0f} |")
    print("k-NN ms: hdbscan's core-distance query alone on the split components; bound ×: straightforward ms / k-NN ms, the\n"
          "most exact mode can gain on that frame (it must run that query unchanged: see knn_seconds).")


def job_table():
    from mrdino.worlds import make_street_dataset, make_street_video
    from mrdino.instances import InstanceConfig
    from mrdino.pseudolabels import pseudolabel
    from mrdino.flow import TAU_STATIC
    print("\nJob throughput (flow DIS + retrieval + instances + writing), frames/s over all frames of the videos")
    head = f"{'data':34s} {'mode':>5s} {'workers':>7s} {'frames':>6s} {'labelled':>8s} {'seconds':>8s} {'frames/s':>8s}"
    print(head); print('-' * len(head))
    small = make_street_dataset(6, seed=20, n_frames=40)
    big = [make_street_video(seed=30, height=376, width=1240, n_frames=20)]
    for data, vids, cfg in [('6 videos 126×420 (synthetic preset)', small, InstanceConfig()),
                            ('1 video 376×1240 (reference)', big, InstanceConfig())]:
        for mode, workers in [('exact', 1), ('exact', 2), ('fast', 1)]:
            if len(vids) == 1 and workers > 1: continue
            with tempfile.TemporaryDirectory() as d:
                from dataclasses import replace
                r = pseudolabel(vids, d, tau_static=TAU_STATIC['synthetic'], instances=replace(cfg, mode=mode),
                                workers=workers, progress=False)
            print(f"{data:34s} {mode:>5s} {workers:7d} {r['frames']:6d} {r['labelled']:8d} {r['seconds']:8.1f} {r['frames_per_s']:8.1f}")


def quality(n_videos=4, n_frames=30, every=2):
    from mrdino.worlds import make_street_video
    from mrdino.instances import InstanceConfig
    from mrdino.pseudolabels import pseudolabel_quality, quality_table
    vids = [make_street_video(seed=s, height=376, width=1240, n_frames=n_frames) for s in range(100, 100 + n_videos)]
    small = [make_street_video(seed=s, n_frames=n_frames * 2) for s in range(100, 100 + n_videos)]
    res = {}
    for fl in ('gt', 'dis', 'dis_fine'):
        res[f'376x1240 {fl} flow, reference'] = pseudolabel_quality(vids, fl, InstanceConfig(), every=every)
        if fl != 'dis_fine':
            res[f'376x1240 {fl} flow, both_axes'] = pseudolabel_quality(vids, fl, InstanceConfig(edge='both_axes'), every=every)
    for fl in ('gt', 'dis'):
        res[f'126x420 {fl} flow, synthetic preset'] = pseudolabel_quality(small, fl, None, every=every)
        res[f'126x420 {fl} flow, scaled by 126/376'] = pseudolabel_quality(small, fl, InstanceConfig().scaled(126 / 376), every=every)
    print(f"\nPseudo-label quality on synthetic still-camera frames (percent; {n_videos} videos, every {every}th still frame;"
          f" 'moving' = objects moving on their own in that frame)")
    print(quality_table(res))


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quality', action='store_true', help='also score pseudo-labels against GT (slow)')
    ap.add_argument('--loky', action='store_true', help="also time the straightforward version with hdbscan's default worker processes")
    ap.add_argument('--no-job', action='store_true', help='skip the job throughput table')
    ap.add_argument('--no-timing', action='store_true', help='skip the per-frame timing table')
    ap.add_argument('--video', help="also time DIS flows of a real video, every 13th frame (e.g. OpenCV's sample vtest.avi)")
    a = ap.parse_args()
    if not a.no_timing: timing_table(bench_frames(), a.loky)
    if a.video and not a.no_timing:
        print(f"\nReal footage: {a.video}")
        timing_table(video_frames(a.video), a.loky)
    if not a.no_job: job_table()
    if a.quality: quality()
