"""What tools/docs.py makes of notebook outputs, in real Sphinx builds of one-page sites: a plotly figure becomes HTML
drawn by the site's own plotly.js (no CDN), an output no page can show fails the build, and the machine's folders
(temporary folders, the repository, the virtual environment) do not reach the page."""
import json, re, sys, tempfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
import docs

def _nb(path:Path, code:str):
    cells = [{'cell_type': 'markdown', 'id': 'm', 'metadata': {}, 'source': '# Outputs'},
             {'cell_type': 'code', 'id': 'c', 'metadata': {}, 'source': code, 'outputs': [], 'execution_count': None}]
    path.write_text(json.dumps({'cells': cells, 'nbformat': 4, 'nbformat_minor': 5, 'metadata': {
        'kernelspec': {'name': 'python3', 'display_name': 'python3', 'language': 'python'}}}))

def test_plotly_figure_and_paths(tmp_path):
    pytest.importorskip('plotly')
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    _nb(nbs / 'index.ipynb', "import sys, tempfile, warnings\nfrom pathlib import Path\nimport plotly.graph_objects as go\n"
        "d = Path(tempfile.mkdtemp())\nprint(f'wrote {d / \"masks\" / \"a.png\"}; python {sys.executable}; here {Path.cwd()}')\n"
        f"print('model ' + '/'.join([{str(ROOT.parent)!r}, {ROOT.name!r}, 'runs/demo/dinosaur']))\n"   # the path in the output only"
        "go.Figure(go.Scatter(x=[1, 2], y=[3, 1]))")
    docs.build(tmp_path / 'site', quick=True, build_dir=tmp_path / 'build', nbs_dir=nbs)
    page = (tmp_path / 'site' / 'index.html').read_text()
    assert re.search(r'addEventListener\("DOMContentLoaded", function \(\) \{\s*window.PLOTLYENV', page)   # drawn after plotly.js loads
    assert 'Plotly.newPlot' in page and re.search(r'<script[^>]+src="_static/plotly\.min\.js', page), page[-3000:]
    assert (tmp_path / 'site' / '_static' / 'plotly.min.js').stat().st_size > 1e6
    assert 'wrote masks/a.png; python .venv/bin/python' in page, page
    assert 'model runs/demo/dinosaur' in page
    text = re.sub(r'<script.*?</script>', '', page, flags=re.S)
    for p in [tempfile.gettempdir() + '/', str(ROOT), sys.prefix, str(tmp_path)]:
        assert p not in text, p

def test_an_output_no_page_can_show_fails_the_build(tmp_path):
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    _nb(nbs / 'index.ipynb', "from IPython.display import display\ndisplay({'application/x-mrdino-nothing': 'x'}, raw=True)")
    with pytest.raises(SystemExit, match='output.*no page can show.*application/x-mrdino-nothing'):
        docs.build(tmp_path / 'site', quick=True, build_dir=tmp_path / 'build', nbs_dir=nbs)
