"""The `synthetic` preset leaves the symmetric state: after training, slots differ and each pixel is owned by one slot.

With K slots that are all alike, the decoder's alpha masks are the same for every slot, so the softmax over slots
gives 1/K everywhere (1/6 ≈ 0.17 for the preset). A decomposing model gives each patch mostly to one slot, so the
mean over patches of the largest alpha is well above 1/K. Measured in the notebook's study (03_dinosaur, "Learning
rate of the synthetic preset"): 0.17 after 2000 steps at the paper's 4e-4, 0.64 after 1000 steps at the preset's 2e-3.
"""
import numpy as np
import pytest
import torch

from mrdino.worlds import make_street_dataset, make_street_video
from mrdino.dinosaur import DinosaurConfig, load_dinosaur, take_view, to_images, train_dinosaur


pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


def test_synthetic_preset_breaks_slot_symmetry(tmp_path):
    cfg = DinosaurConfig.preset('synthetic')
    res = train_dinosaur(cfg, make_street_dataset(6, seed=0), tmp_path / 'run', steps=1200, progress=False)
    assert res['step'] == 1200
    model = load_dinosaur(tmp_path / 'run')
    held_out = make_street_video(seed=500, n_frames=12).frames                  # not a training video
    crops = np.stack([take_view(f, 0, x0, False, cfg.crop) for f in held_out for x0 in (0, 147, 294)])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        out = model(model.encode(to_images(crops)), generator=g)
    max_alpha = out.masks.max(1).values.mean().item()                           # masks: (B, K, P)
    assert max_alpha > 0.4, f"slots did not separate: mean max alpha {max_alpha:.3f} (1/K = {1 / cfg.n_slots:.3f})"
    owners = out.masks.argmax(1)                                                # (B, P) owning slot per patch
    used = [len(torch.unique(o)) for o in owners]
    assert np.mean(used) >= 3, f"on average only {np.mean(used):.1f} slots own any patch"
