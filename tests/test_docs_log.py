"""tools/docs.py's log: one line per page (name, executed / cached / unchanged, seconds), without the kernels' and
myst-nb's per-notebook messages. A real Sphinx build of two one-cell notebooks (two kernels would cost more: the
second notebook has the first one's code, so jupyter-cache serves it from the first one's execution)."""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
import docs, docs_conf

def _nb(path:Path, title:str, code:str):
    cells = [{'cell_type': 'markdown', 'id': 'm', 'metadata': {}, 'source': f'# {title}'},
             {'cell_type': 'code', 'id': 'c', 'metadata': {}, 'source': code, 'outputs': [], 'execution_count': None}]
    path.write_text(json.dumps({'cells': cells, 'nbformat': 4, 'nbformat_minor': 5, 'metadata': {
        'kernelspec': {'name': 'python3', 'display_name': 'python3', 'language': 'python'}}}))

def test_line_pieces():
    assert docs_conf.page_line('03_dinosaur', 'executed', 212.04) == '[docs] 03_dinosaur      executed   212.0 s'
    assert docs_conf.page_line('index', 'unchanged (not read again)') == '[docs] index            unchanged (not read again)'
    # myst-nb's messages as Sphinx's -q log hands them to a handler: the path is put in front, the type after
    assert docs_conf.execution_kind('/b/src/00_data.ipynb: Using cached notebook: ID=3 [mystnb]') == 'cached'
    assert docs_conf.execution_kind('/b/src/00_data.ipynb: Executed notebook in 95.20 seconds [mystnb]') == 'executed'
    assert docs_conf.execution_kind('/b/src/00_data.ipynb: Executing notebook using temporary CWD [mystnb]') is None
    assert docs.chatter('[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication ...\n')
    assert not docs.chatter("/b/src/00_data.ipynb:3: WARNING: 'myst' cross-reference target not found: 'x.ipynb'\n")

def test_build_log_names_each_page(tmp_path, capfd):
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    _nb(nbs / '01_a.ipynb', 'A page', 'x = 1 + 1')
    _nb(nbs / 'index.ipynb', 'Home', 'x = 1 + 1')                  # same code: served from 01_a's execution
    (nbs / 'results').mkdir(); (nbs / 'results' / 'summary.md').write_text('| a | b |\n|---|---|\n| 1 | 2 |\n')   # a sweep summary
    docs.build(tmp_path / 'site', quick=True, build_dir=tmp_path / 'build', nbs_dir=nbs)
    out, err = capfd.readouterr()
    pages = {m[0]: (m[1], float(m[2])) for m in re.findall(r'^\[docs\] (\S+) +(executed|cached) +([\d.]+) s$', out, re.M)}
    assert {k: v[0] for k, v in pages.items()} == {'01_a': 'executed', 'index': 'cached'}, out
    assert all(0 <= s < 600 for _, s in pages.values())
    assert 'without encryption' not in out + err and 'Executing notebook' not in out + err, err
    assert (tmp_path / 'site' / 'index.html').exists() and (tmp_path / 'site' / '01_a.html').exists()
    assert (tmp_path / 'site' / 'results' / 'summary.html').exists() and 'WARNING' not in err, err   # a page, no toctree warning
