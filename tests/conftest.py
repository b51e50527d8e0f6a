import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')        # tests never download weights
os.environ.setdefault('MPLBACKEND', 'Agg')
import tempfile
# pytest-xdist (pytest.ini) runs one worker per core: each worker's torch, OpenMP and BLAS, and the kernels and jobs it
# starts, take their share of the cores instead of all of them (more threads than cores would fight over them)
if 'PYTEST_XDIST_WORKER_COUNT' in os.environ:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    for v in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
        os.environ.setdefault(v, str(max(1, cores // int(os.environ['PYTEST_XDIST_WORKER_COUNT']))))
os.environ.setdefault('MRDINO_HASH_CACHE', os.path.join(tempfile.mkdtemp(prefix='mrdino-test-'), 'file-hashes.sqlite'))   # never the user's cache

import pytest


@pytest.fixture
def one_thread():
    "Single-threaded torch: faster and steadier than 2 threads on a shared 2-core machine."
    import torch
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
