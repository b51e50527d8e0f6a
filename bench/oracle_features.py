"""What do the MR stages give when the encoder knows what is an object? A DIAGNOSTIC, never a model: the main job on
the synthetic default with the frozen encoder replaced by features made from the ground truth.

Each patch's feature is the fraction of its pixels per object kind (background, car, pedestrian, cyclist), times
`--scale`, next to a 2-D sin-cos position code (64 dims in all). Like DINOv2 features, they say *what* is in a
patch and not *which* instance; unlike them, they are exact. The job itself (pseudo-labels from flow, DINOSAUR,
stage 1, stage 2, evaluation) is the unchanged `MainJob`, so the table isolates the encoder: compare it with the
demo's stand-in table and with the ceilings of `bench/stage2_oracle.py --ceilings`.

The features are looked up by the exact bytes of each crop the job encodes (every cache crop, stage window and
evaluation window, plain and mirrored, at the offsets the presets give); a crop it does not know is an error, so
nothing falls back silently. Only generated synthetic videos (which carry their ground truth) can be used.

    .venv/bin/python bench/oracle_features.py runs/oracle [--scale 5]
"""
import argparse
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mrdino.encoder import sincos_pos_grid
from mrdino.dinosaur import DinosaurConfig, cache_views
from mrdino.windows import window_layout
from mrdino.stage1 import Stage1Config, window_offsets
from mrdino.pipeline import MainJob

KINDS = dict(car=1, pedestrian=2, cyclist=3)      # 0 = background


def _key(crop): return hashlib.md5(np.ascontiguousarray(crop).tobytes()).digest()


def job_crops(dcfg, s1cfg):
    "Where the job cuts its crops: x offsets on the frame (feature cache, stage-1/2 windows) and the evaluation layout."
    H, W = dcfg.resize
    if H != dcfg.crop: raise ValueError(f"frames {H} px tall with {dcfg.crop}-px crops: this bench assumes one row of crops")
    xs = {x for _, x, _ in cache_views((H, W), dcfg.crop, dcfg.cache_stride, False)}
    xs |= set(window_offsets(s1cfg.resize[1], s1cfg.crop, s1cfg.n_windows))
    return sorted(xs), window_layout(H, W, dcfg.crop, (H, W))


class GroundTruthKindEncoder(nn.Module):
    "Stands where the frozen encoder does: (B, 3, crop, crop) in [0, 1] -> (B, P, 4 + pos) features from the GT."
    def __init__(self, videos, scale=5.0, crops=None, dim=64):
        super().__init__()
        xs, layout = crops or job_crops(DinosaurConfig.preset('synthetic'), Stage1Config.preset('synthetic'))
        crop, pad = layout.crop, layout.pad[1]
        self.crop, self.grid, self.dim, self.scale = crop, crop // 14, dim, scale
        self.n_patches = self.grid ** 2
        self.description = f"ORACLE: ground-truth object kinds per patch x{scale:g} + sin-cos positions (diagnostic, not an encoder)"
        self.weights_id = f"oracle-gt-kinds-x{scale:g}"
        self.register_buffer('pos', sincos_pos_grid(self.grid, dim - 4)[0], persistent=False)
        self.table = {}
        for v in videos:
            for t in range(len(v)):
                f = v[t]
                kind = np.zeros(f.gt.shape, np.int64)
                for i, k in enumerate(v.kinds, 1): kind[f.gt == i] = KINDS[k]
                for x in xs: self._add(f.image[:crop, x:x + crop], kind[:crop, x:x + crop])
                im, kd = np.pad(f.image, ((0, 0), (pad, pad), (0, 0))), np.pad(kind, ((0, 0), (pad, pad)))
                for _, x in layout.origins: self._add(im[:crop, x + pad:x + pad + crop], kd[:crop, x + pad:x + pad + crop])

    def _add(self, img, kind):
        for flip in (False, True):
            self.table[_key(img[:, ::-1] if flip else img)] = np.ascontiguousarray(kind[:, ::-1] if flip else kind)

    def train(self, mode=True): return self               # frozen, like the real encoder

    @torch.no_grad()
    def forward(self, images):
        x = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()   # exact: crops come from uint8
        try: kinds = np.stack([self.table[_key(c)] for c in x])
        except KeyError:
            raise KeyError("a crop that is not in the ground-truth table: the oracle encoder only knows the crops of "
                           "the job's crop offsets (see job_crops)") from None
        frac = F.adaptive_avg_pool2d(F.one_hot(torch.from_numpy(kinds), 4).permute(0, 3, 1, 2).float(), self.grid)
        frac = frac.flatten(2).transpose(1, 2)                                  # (B, P, 4) kind fractions
        return torch.cat([self.scale * frac, self.pos.expand(len(x), -1, -1)], -1).to(images.device)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out', help='a new folder (or an earlier oracle run to reuse), never a real run')
    ap.add_argument('--scale', type=float, default=5.0, help='weight of the kind fractions against the position code')
    ap.add_argument('--data', default='synthetic:6'); ap.add_argument('--eval-data', default='synthetic-eval:4')
    a = ap.parse_args()
    out = Path(a.out)
    marker = out / 'oracle_features.json'
    if out.exists() and any(out.iterdir()) and not marker.exists():
        raise SystemExit(f"{out} holds something else (no {marker.name}): give a new folder, this bench never writes into a real run")
    if not (a.data.startswith('synthetic') and a.eval_data.startswith('synthetic')):
        raise SystemExit("only generated synthetic videos carry the ground truth this bench reads")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(dict(scale=a.scale, data=a.data, eval_data=a.eval_data)))
    job = MainJob(out_dir=str(out), data=a.data, eval_data=a.eval_data, progress=False, world='street')   # kinds of the street
    enc = GroundTruthKindEncoder(job.videos() + job.eval_videos(), a.scale, job_crops(job.dcfg, job.s1cfg))
    job.dcfg = replace(job.dcfg, encoder_weights=enc.weights_id)   # the steps' settings name the oracle: no reuse across scales
    job._cache['encoder'] = enc
    print(f"encoder: {enc.description}; {len(enc.table)} crops known")
    t0 = time.time()
    res = job.evaluate()
    cols = ['f1_50', 'ap_50', 'ar_50', 'all_ari', 'fg_ari', 'recall_parked']
    print(f"{'':14s}" + ''.join(f"{c:>14s}" for c in cols))
    for v, r in res.items(): print(f"{v:14s}" + ''.join(f"{100 * r.get(c, float('nan')):14.1f}" for c in cols))
    print(f"wall {time.time() - t0:.0f} s (steps reused where finished)")


if __name__ == '__main__':
    main()
