"""DDP under torchrun: 2 CPU processes (gloo, 127.0.0.1) give the same weights as one process on the same global batch."""
import os, socket, subprocess, sys

import numpy as np
import torch
from safetensors.torch import load_file

from mrdino.dinosaur import Dinosaur, DinosaurConfig, train_dinosaur

CFG = dict(crop=42, n_slots=3, slot_dim=8, decoder_hidden=16, batch_size=4, resize=(42, 126), cache_stride=14,
           encoder_arch=dict(embed_dim=16, depth=1, num_heads=2), warmup_steps=2, decay_steps=50, steps=5,
           ckpt_every=5, log_every=1, lr=1e-3)


def frames(n=6):
    rng = np.random.default_rng(0)
    f = np.full((n, 42, 126, 3), 90, np.uint8)
    for i in range(n):
        y, x = rng.integers(0, 30), rng.integers(0, 110)
        f[i, y:y + 12, x:x + 16] = rng.integers(0, 255, 3)
    return f


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def test_ddp_two_processes_match_single_process(tmp_path):
    port = _free_port()
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'GLOO_SOCKET_IFNAME': 'lo', 'MASTER_ADDR': '127.0.0.1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1', '--nproc_per_node=2', '--master_addr=127.0.0.1',
           f'--master_port={port}', __file__, str(tmp_path / 'ddp')]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert 'on 2 process(es)' in p.stdout
    n = torch.get_num_threads(); torch.set_num_threads(1)
    try: train_dinosaur(DinosaurConfig.preset('synthetic', **CFG), frames(), tmp_path / 'single', progress=False)
    finally: torch.set_num_threads(n)
    a = load_file(str(tmp_path / 'ddp' / 'ckpt' / 'step_0000005' / 'model.safetensors'))
    b = load_file(str(tmp_path / 'single' / 'ckpt' / 'step_0000005' / 'model.safetensors'))
    assert a.keys() == b.keys()
    for k in a: torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)
    # and training did move the weights (the comparison is not between two untouched initialisations)
    with torch.random.fork_rng():
        torch.manual_seed(0); m0 = Dinosaur(DinosaurConfig.preset('synthetic', **CFG))
    assert (a['slot_mu'] - m0.slot_mu).abs().max() > 1e-4
    rows = (tmp_path / 'ddp' / 'log.csv').read_text().splitlines()
    assert len(rows) == 1 + 5                             # only rank 0 logs


if __name__ == '__main__':                                # each torchrun worker
    torch.set_num_threads(1)
    train_dinosaur(DinosaurConfig.preset('synthetic', **CFG), frames(), sys.argv[1], progress=False)
