"""Cost of the input identity: the old digest (size + first and last 4 KiB, SHA-1) against hashes of the whole file.

    python bench/hashing.py                 # a KITTI-size PNG (1242×375) and a 100 MB video, made in a temp dir
    python bench/hashing.py --video-mb 400 --repeat 5

`mrdino.data.input_identity` hashes every byte with xxh3-128 and caches the hash under the file's inode, size and
times, so a rerun on unchanged files only stats them (the `cached` column: `file_hashes` on a cache hit). BLAKE2b
(stdlib), SHA-1 and BLAKE3 (if the `blake3` package is installed) are shown for comparison. Files are read from the
page cache (warm: each is read once before timing); a cold read is bounded by the disk instead. Times are the best
of --repeat runs, in ms per file, with the throughput in GB/s.
"""
import argparse, hashlib, os, sys, tempfile, time
from pathlib import Path

import cv2, numpy as np

from mrdino.data import _hash_file, file_hashes
from mrdino.worlds import make_street_video

def head_tail(p:Path, n:int=4096)->str:
    "The identity before: SHA-1 of the size and the first and last 4 KiB."
    size = p.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with open(p, 'rb') as f:
        h.update(f.read(n))
        if size > n: f.seek(max(n, size - n)); h.update(f.read())
    return h.hexdigest()[:16]

def whole(make):
    "Hash every byte of a file with the hashlib-like constructor `make`, 4 MiB at a time."
    def run(p:Path)->str:
        h, buf = make(), bytearray(1 << 22)
        mv = memoryview(buf)
        with open(p, 'rb', buffering=0) as f:
            while n := f.readinto(buf): h.update(mv[:n])
        return h.hexdigest()
    return run

def kitti_png(d:Path)->Path:
    "A 1242×375 street frame with sensor-like noise, as PNG (KITTI's frames are 0.7-1 MB PNGs)."
    im = make_street_video(0, n_frames=2, height=375, width=1242).frames[0].astype(np.int16)
    im = np.clip(im + np.random.default_rng(0).normal(0, 3, im.shape), 0, 255).astype(np.uint8)
    p = d / 'kitti.png'; cv2.imwrite(str(p), im[..., ::-1])
    return p

def video(d:Path, mb:int)->Path:
    "An MJPG AVI of noise frames at 1242×375 (about 1 MB each), at least `mb` MB."
    p, rng = d / 'video.avi', np.random.default_rng(1)
    vw = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*'MJPG'), 10, (1242, 375))
    base = rng.integers(0, 256, (375, 1242, 3), dtype=np.uint8)
    while p.stat().st_size < mb * 1e6: vw.write(np.roll(base, int(rng.integers(0, 1242)), axis=1))   # written as it goes
    vw.release()
    return p

def best(fn, p, repeat:int)->float:
    fn(p)                                                 # warm: the page cache, the allocator
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(p); ts.append(time.perf_counter() - t0)
    return min(ts)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--video-mb', type=int, default=100, help='size of the generated video file in MB')
    ap.add_argument('--repeat', type=int, default=3, help='timed runs per cell (the best is shown)')
    a = ap.parse_args()
    methods = {'head/tail (old)': head_tail, 'xxh3-128 (now)': _hash_file, 'blake2b': whole(hashlib.blake2b), 'sha1': whole(hashlib.sha1)}
    try:
        import blake3; methods['blake3'] = whole(blake3.blake3)
    except ImportError: pass
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ['MRDINO_HASH_CACHE'] = str(tmp / 'hashes.sqlite')
        import mrdino.data as data
        data._RACY_NS = -1                                # the files were just written: let the cache keep them anyway
        files = {'KITTI frame 1242×375 PNG': kitti_png(tmp), f'video {a.video_mb} MB (MJPG AVI)': video(tmp, a.video_mb)}
        methods['xxh3-128 cached'] = lambda p: file_hashes([p])
        cols = list(methods)
        print(f"{'file':32s}{'size':>10s}" + ''.join(f"{c:>22s}" for c in cols))
        for name, p in files.items():
            size = p.stat().st_size
            cells = []
            for c in cols:
                t = best(methods[c], p, a.repeat)
                cells.append(f"{1e3 * t:9.3f} ms {size / t / 1e9:6.2f} GB/s" if c not in ('head/tail (old)', 'xxh3-128 cached')
                             else f"{1e3 * t:9.3f} ms{'':11s}")
            print(f"{name:32s}{size / 1e6:8.2f}MB" + ''.join(f"{x:>22s}" for x in cells))
    print(f"(best of {a.repeat}, warm page cache; {os.cpu_count()} CPUs; Python {sys.version.split()[0]})")

if __name__ == '__main__': main()
