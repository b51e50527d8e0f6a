"""Flow throughput (frame pairs per second) per backend at KITTI (376×1240) and TRI-PD (490×980) sizes.

    python bench/flow.py                       # all backends, 3 timed pairs each
    python bench/flow.py --backends dis,raft --pairs 10 --device cuda

RAFT / RAFT-small / SMURF run with RANDOM weights (weights='random'): the flow is meaningless, the cost is the
same as with trained weights. Frames are synthetic street frames rendered at each size. Timings on a shared
machine are noisy; the table says which device ran and the CPU thread count.
"""
import argparse, logging, time

import torch

from mrdino.worlds import make_street_video
from mrdino.flow import get_backend

SIZES = {'KITTI 376×1240': (376, 1240), 'TRI-PD 490×980': (490, 980)}
ALL = ['dis_ultrafast', 'dis_fast', 'dis_medium', 'dis_fine', 'dis', 'farneback', 'tvl1', 'raft_small', 'raft', 'smurf']
TORCH = ('raft', 'raft_small', 'smurf')

def bench(name, frames, pairs, device):
    kw = dict(weights='random', device=device, batch_size=1) if name in TORCH else {}
    b = get_backend(name, **kw)
    b(frames[0], frames[1])                                     # warm-up (allocations, cuDNN autotune)
    if name in TORCH and b.device.startswith('cuda'): torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(pairs):
        b(frames[i % (len(frames) - 1)], frames[i % (len(frames) - 1) + 1])
    if name in TORCH and b.device.startswith('cuda'): torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / pairs
    return b.describe(), 1 / dt, 1000 * dt

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--backends', default=','.join(ALL), help='comma-separated backend names')
    ap.add_argument('--pairs', type=int, default=3, help='timed pairs per backend and size')
    ap.add_argument('--slow-pairs', type=int, default=1, help='timed pairs for tvl1 and torch backends on CPU')
    ap.add_argument('--device', default=None, help="torch device for RAFT/SMURF (default: cuda if available)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format='%(message)s')
    device = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    print(f"device for torch backends: {device}; torch CPU threads: {torch.get_num_threads()}; "
          "RAFT/SMURF weights: RANDOM (timing only)")
    rows = []
    for label, (H, W) in SIZES.items():
        frames = make_street_video(seed=0, n_frames=4, height=H, width=W).frames
        for name in a.backends.split(','):
            slow = name == 'tvl1' or (name in TORCH and device == 'cpu')
            desc, fps, ms = bench(name, frames, a.slow_pairs if slow else a.pairs, device)
            rows.append((label, desc, f"{fps:.2f}", f"{ms:.0f}"))
            print(f"  {label:15s} {desc:45s} {fps:8.2f} pairs/s {ms:9.0f} ms/pair", flush=True)
    print()
    w = [max(len(r[i]) for r in rows + [('size', 'backend', 'pairs/s', 'ms/pair')]) for i in range(4)]
    for r in [('size', 'backend', 'pairs/s', 'ms/pair'), tuple('-' * x for x in w)] + rows:
        print('  '.join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(r)))

if __name__ == '__main__':
    main()
