import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')        # tests never download weights
os.environ.setdefault('MPLBACKEND', 'Agg')
import tempfile
os.environ.setdefault('MRDINO_HASH_CACHE', os.path.join(tempfile.mkdtemp(prefix='mrdino-test-'), 'file-hashes.sqlite'))   # never the user's cache

import pytest


@pytest.fixture
def one_thread():
    "Single-threaded torch: faster and steadier than 2 threads on a shared 2-core machine."
    import torch
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
