"""nbdev's docs preparation works on every notebook.

`nbdev_docs` / `nbdev_preview` first run, in each notebook, only the cells nbdev needs for the docs: `#| export`
cells, cells with imports and `show_doc` cells (nbdev.processors.exec_show_docs). A cell of that kind that uses a
name made in an example cell fails there with a NameError (keep imports in cells of their own). This runs exactly
that step, one notebook per test, in a fresh process as nbdev does.
"""
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted(p.name for p in (ROOT / 'nbs').glob('*.ipynb'))
CHECK = """
import sys
from pathlib import Path
from nbdev.processors import FilterDefaults
import nbdev.serve_drv as drv
nb, out = Path(sys.argv[1]), Path(sys.argv[2])
drv.main((nb, out / nb.name, FilterDefaults))
"""

@pytest.mark.parametrize('nb', NBS)
def test_docs_preparation(nb, tmp_path):
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg'}
    r = subprocess.run([sys.executable, '-c', CHECK, str(ROOT / 'nbs' / nb), str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, f"nbdev's docs preparation fails on {nb} (move imports into cells of their own):\n{r.stderr[-4000:]}"
    assert (tmp_path / nb).exists()
