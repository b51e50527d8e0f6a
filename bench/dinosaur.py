"""Training throughput of DINOSAUR with and without the frozen-feature cache.

    python bench/dinosaur.py [--threads N] [--synthetic-steps 20] [--kitti-steps 2] [--kitti-batch 2] [--skip-kitti]

Times `train_dinosaur` itself: seconds per optimiser step come from its log (first steps dropped as warm-up); the
cache is built before the loop and its build time is reported on its own. Synthetic preset: the stand-in encoder,
batch 16. KITTI preset shape: the real ViT-B/14 architecture at 378 px, 15 slots, D=32, decoder 2048, with
*random* encoder weights (timing only, not DINOv2) and a small batch (a batch of 64 does not fit a CPU run).
"""
import argparse, csv, shutil, sys, tempfile, time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mrdino.dinosaur import DinosaurConfig, Dinosaur, train_dinosaur


def frames(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.integers(60, 200, (n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        for _ in range(8):
            y, x = rng.integers(0, h - h // 4), rng.integers(0, w - w // 8)
            f[i, y:y + h // 4, x:x + w // 8] = rng.integers(0, 255, 3)
    return f


def time_training(cfg, data, steps, cache, warm=2):
    "(s/step, img/s, cache build s) from the run's own log."
    d = Path(tempfile.mkdtemp())
    try:
        t0 = time.time()
        cfg = replace(cfg, log_every=1, ckpt_every=10 ** 9, steps=steps + warm)
        train_dinosaur(cfg, data, d, cache=cache, progress=False)
        total = time.time() - t0
        rows = list(csv.DictReader(open(d / 'log.csv')))[warm:]
        s = float(np.mean([float(r['s_per_step']) for r in rows]))
        loop = sum(float(r['s_per_step']) for r in csv.DictReader(open(d / 'log.csv')))
        return s, cfg.batch_size / s, total - loop
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--threads', type=int, default=torch.get_num_threads(), help='torch CPU threads')
    p.add_argument('--synthetic-steps', type=int, default=20)
    p.add_argument('--kitti-steps', type=int, default=2)
    p.add_argument('--kitti-batch', type=int, default=2)
    p.add_argument('--skip-kitti', action='store_true')
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    print(f"device {dev}, torch {torch.__version__}, {a.threads} CPU thread(s)", flush=True)
    rows = []
    syn = DinosaurConfig.preset('synthetic')
    data = frames(24, 126, 420)
    for cache in (False, True):
        s, ips, build = time_training(syn, data, a.synthetic_steps, cache)
        rows.append(('synthetic (stand-in encoder)', syn.batch_size, 'yes' if cache else 'no', s, ips, build if cache else None))
        print(rows[-1], flush=True)
    if not a.skip_kitti:
        kit = DinosaurConfig.preset('kitti', encoder_weights='random', batch_size=a.kitti_batch, cache_stride=882)
        data = frames(2, 378, 1260)
        for cache in (False, True):
            s, ips, build = time_training(kit, data, a.kitti_steps, cache, warm=1)
            rows.append(('KITTI shape (ViT-B/14 random init)', kit.batch_size, 'yes' if cache else 'no', s, ips, build if cache else None))
            print(rows[-1], flush=True)
        # forward-only encoder throughput (what the cache saves per image)
        m = Dinosaur(kit).to(dev).eval()
        x = torch.rand(a.kitti_batch, 3, 378, 378, device=dev)
        m.encode(x); t = time.time(); m.encode(x); te = time.time() - t
        rows.append(('KITTI shape: encoder forward only', a.kitti_batch, '-', te, a.kitti_batch / te, None))
    print("\n| setting | batch | feature cache | s/step | steps/s | images/s | cache build s |")
    print("|---|---|---|---|---|---|---|")
    for name, b, c, s, ips, build in rows:
        print(f"| {name} | {b} | {c} | {s:.3f} | {1 / s:.2f} | {ips:.2f} | {'' if build is None else f'{build:.1f}'} |")


if __name__ == '__main__':
    sys.exit(main())
