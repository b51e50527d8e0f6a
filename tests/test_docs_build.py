"""tools/docs.py's notebook preparation (no execution): what the docs run, show and hide."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
import docs

def _nb(tmp_path, cells):
    nb = {'cells': [{'cell_type': k, 'id': f'i{i}', 'metadata': m, 'source': s, **({'outputs': [], 'execution_count': None} if k == 'code' else {})}
                    for i, (k, s, m) in enumerate(cells)],
          'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}}, 'nbformat': 4, 'nbformat_minor': 5}
    p = tmp_path / '09_demo.ipynb'; p.write_text(json.dumps(nb)); return p

CELLS = [('code', '#| default_exp demo', {}), ('markdown', '# Demo\n\n> a title', {}),
         ('code', '#| export\ndef f(\n    x:int, # the input\n)->int: # twice x\n    "Double."\n    return 2 * x', {}),
         ('code', '#| hide\nimport os', {}), ('code', 'f(2)', {}), ('code', '#| slow\nf(3)', {}),
         ('code', "#| eval: false\nf('never')", {}), ('code', "out_dir = 'runs/demo'", {'tags': ['parameters']})]

def test_prepare(tmp_path):
    cells = json.loads(docs.prepare(_nb(tmp_path, CELLS)))['cells']
    src = lambda c: ''.join(c['source'])
    tags = lambda c: c['metadata'].get('tags', [])
    assert 'show_doc' in src(cells[0]) and tags(cells[0]) == ['remove-cell']          # the helper, hidden
    by = {src(c).split('\n')[-1]: c for c in cells}
    assert tags(next(c for c in cells if 'default_exp' in src(c))) == ['remove-cell']
    exp = next(i for i, c in enumerate(cells) if 'def f(' in src(c))
    assert tags(cells[exp]) == ['remove-cell'] and src(cells[exp + 1]) == 'show_doc(f)' and tags(cells[exp + 1]) == ['remove-input']
    assert tags(by['import os']) == ['remove-cell']
    assert src(by['f(2)']) == 'f(2)' and tags(by['f(2)']) == []                       # directives dropped, example shown
    assert src(by['f(3)']) == 'f(3)' and tags(by['f(3)']) == []                       # full build: slow cells run
    assert tags(by["f('never')"]) == ['skip-execution']
    shown = [c for c in cells if 'remove-cell' not in tags(c)]
    assert not any('#|' in src(c) for c in shown if c['cell_type'] == 'code')
    assert len({c['id'] for c in cells}) == len(cells)

def test_prepare_quick_and_demo_run(tmp_path):
    cells = json.loads(docs.prepare(_nb(tmp_path, CELLS), quick=True, demo_run=tmp_path / 'run'))['cells']
    src = lambda c: ''.join(c['source'])
    slow = next(c for c in cells if 'f(3)' in src(c))
    assert slow['metadata']['tags'] == ['skip-execution'] and 'not run in the quick docs build' in src(slow)
    i = next(i for i, c in enumerate(cells) if 'parameters' in c['metadata'].get('tags', []))
    assert src(cells[i + 1]).startswith(f"out_dir = {str((tmp_path / 'run').resolve())!r}")   # after the parameters, as papermill
    assert cells[i + 1]['metadata']['tags'] == ['remove-cell']
    reader = CELLS[:-1] + [('code', "demo_run = ''   # a finished demo run", {'tags': ['parameters']})]   # as 08_predict
    cells = json.loads(docs.prepare(_nb(tmp_path, reader), demo_run=tmp_path / 'run'))['cells']
    i = next(i for i, c in enumerate(cells) if 'parameters' in c['metadata'].get('tags', []))
    assert src(cells[i + 1]).startswith(f"demo_run = {str((tmp_path / 'run').resolve())!r}")

def test_index_lists_every_notebook_in_order(tmp_path):
    names = docs.stage(tmp_path, quick=True)
    assert 'conf.py' in names and sorted(p.name for p in (ROOT / 'nbs').glob('*.ipynb')) == sorted(n for n in names if n.endswith('.ipynb'))
    toc = ''.join(json.loads((tmp_path / 'index.ipynb').read_text())['cells'][-1]['source'])
    want = sorted(p.stem for p in (ROOT / 'nbs').glob('*.ipynb') if p.stem != 'index')
    assert toc.startswith('```{toctree}') and [l for l in toc.split('\n') if l in want] == want
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob('*.ipynb')}
    docs.stage(tmp_path, quick=True)                                                   # unchanged: files left alone
    assert before == {p.name: p.stat().st_mtime_ns for p in tmp_path.glob('*.ipynb')}

def test_demo_run_is_copied_never_written(tmp_path):
    "--demo-run: the notebooks get a copy under the build folder and 08's predictions go next to it, not into the run."
    run = tmp_path / 'runs' / 'demo'; (run / 'dinosaur').mkdir(parents=True)
    (run / 'results.json').write_text('{}'); (run / 'dinosaur' / 'done.json').write_text('{"a": 1}')
    copy = docs.copy_run(run, tmp_path / 'build' / 'demo_run')
    assert (copy / 'dinosaur' / 'done.json').read_text() == '{"a": 1}'
    (copy / 'predictions.png').write_bytes(b'x'); (copy / 'results.json').write_text('{"b": 2}')   # what a notebook writes
    assert sorted(p.name for p in run.iterdir()) == ['dinosaur', 'results.json'] and (run / 'results.json').read_text() == '{}'
    t = (copy / 'dinosaur' / 'done.json').stat().st_mtime_ns
    docs.copy_run(run, copy)                                    # again: unchanged files left alone, changed ones refreshed
    assert (copy / 'dinosaur' / 'done.json').stat().st_mtime_ns == t and (copy / 'results.json').read_text() == '{}'
    reader = CELLS[:-1] + [('code', "demo_run = ''   # a finished demo run\npred_dir = ''", {'tags': ['parameters']})]
    cells = json.loads(docs.prepare(_nb(tmp_path, reader), demo_run=copy))['cells']
    i = next(i for i, c in enumerate(cells) if 'parameters' in c['metadata'].get('tags', []))
    assert f"pred_dir = {str(copy.resolve().parent / 'predict')!r}" in ''.join(cells[i + 1]['source'])
    (copy / 'main.ipynb').write_text(json.dumps({'metadata': {'papermill': {'parameters': {'out_dir': str(run), 'baseline_steps': 200}}}}))
    cells = json.loads(docs.prepare(_nb(tmp_path, CELLS), demo_run=copy))['cells']               # 05_stage2: the run's own parameters
    i = next(i for i, c in enumerate(cells) if 'parameters' in c['metadata'].get('tags', []))
    test = ''.join(cells[i + 1]['source'])
    assert test.startswith(f"out_dir = {str(copy.resolve())!r}") and '\nbaseline_steps = 200' in test and str(run) not in test
