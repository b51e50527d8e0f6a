"""nbdev's docs preparation works on every notebook.

`nbdev_docs` / `nbdev_preview` first run, in each notebook, only the cells nbdev needs for the docs: `#| export`
cells, cells with imports and `show_doc` cells (nbdev.processors.exec_show_docs). A cell of that kind that uses a
name made in an example cell fails there with a NameError (keep imports in cells of their own). This runs exactly
that step, one notebook per test, in a fresh process as nbdev does.
"""
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted(p.name for p in (ROOT / 'nbs').glob('*.ipynb'))
CHECK = """
import json, sys, traceback
from pathlib import Path
from nbdev.processors import FilterDefaults
import nbdev.serve_drv as drv
out, res = Path(sys.argv[1]), {}
for nb in map(Path, sys.argv[2:]):        # each notebook in a fresh shell of its own, as nbdev does
    try: drv.main((nb, out / nb.name, FilterDefaults)); res[nb.name] = ''
    except BaseException as e: res[nb.name] = ''.join(traceback.format_exception(e))[-4000:] or repr(e)
print(json.dumps(res))
"""

@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    "Every notebook prepared in one process (the imports are paid once); {notebook: '' or its error}."
    out = tmp_path_factory.mktemp('prepared')
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg'}
    r = subprocess.run([sys.executable, '-c', CHECK, str(out), *(str(ROOT / 'nbs' / nb) for nb in NBS)], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=1200)
    assert r.returncode == 0, r.stderr[-4000:]
    return out, json.loads(r.stdout.strip().splitlines()[-1])

@pytest.mark.parametrize('nb', NBS)
def test_docs_preparation(nb, prepared):
    out, res = prepared
    assert res[nb] == '', f"nbdev's docs preparation fails on {nb} (move imports into cells of their own):\n{res[nb]}"
    assert (out / nb).exists()


@pytest.mark.parametrize('nb, sym, row', [
    ('05a_pipeline.ipynb', 'MainJob', "| eval_data | str | synthetic-eval:4 | annotated evaluation data, or 'synthetic-eval:N' (held-out seeds 1000+) |"),
    ('02_instances.ipynb', 'InstanceConfig', '| tau_grad | float | 20.0 | split a component when its interior flow edge exceeds this |')])
def test_dataclass_fields_show_a_parameter_table(nb, sym, row):
    # a dataclass defined in a notebook cell has no source file, so the docments of its fields were lost in the docs:
    # run the prepared notebook's show_doc helper, its export cells and show_doc(sym) as the docs build does, in a kernel
    import re, sys, nbformat
    from nbclient import NotebookClient
    sys.path.insert(0, str(ROOT / 'tools'))
    import docs
    prep = nbformat.reads(docs.prepare(ROOT / 'nbs' / nb), 4)
    prep.cells = [prep.cells[0]] + [c for c in prep.cells[1:] if c.cell_type == 'code' and
                                    (re.match(r'#\|\s*export\b', c.source) or c.source == f'show_doc({sym})')]
    NotebookClient(prep, timeout=300, kernel_name='python3', resources={'metadata': {'path': str(ROOT)}}).execute()
    md = next(c for c in prep.cells if c.source == f'show_doc({sym})').outputs[0]['data']['text/markdown']
    assert '| **Type** | **Default** | **Details** |' in md and row in md, md[:2000]
