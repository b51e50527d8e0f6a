"""Build the rendered docs offline into `_docs/`: `.venv/bin/python tools/docs.py` (then open `_docs/index.html`).

Every `nbs/*.ipynb` becomes a page, in file-name order (pipeline order). Each notebook is first prepared the way
nbdev prepares it for its own docs: nbdev's `add_show_docs` adds a `show_doc` cell after each `#| export` cell,
which renders the API reference (signature and the docments table). Then the nbdev directives become Sphinx/myst-nb
cell tags: `#| export`, `#| exporti`, `#| hide` and `#| default_exp` cells run but are not shown, `show_doc` cells
show only their output, `#| eval: false` cells are shown but not run, and the `#|` lines are dropped from what is
shown. Sphinx + myst-nb then execute the notebooks (top to bottom, in a temporary folder, any error fails the
build) and render them with the Furo theme. Executed outputs are cached (jupyter-cache, keyed by the notebook's
code), so a rebuild after editing one notebook re-executes only that one. Nothing is fetched from the network:
widgets show the static snapshot they carry, progress bars write text lines.

What the pages show of the build machine: the kernels run a hidden first cell (`_DOCS_KERNEL`) that draws plotly
figures as HTML for the site's own copy of plotly.js (staged from the installed plotly package; no CDN) and writes
the machine's folders in outputs as a reader's (the repository root, the lessons' temporary folders and the
kernel's working folder dropped, the demo run as `runs/demo`, the virtual environment as `.venv`). An output no
page can show (a MIME type myst-nb does not render) fails the build.

The log names each page as Sphinx reads it: `executed`, `cached` (outputs from the execution cache) or `unchanged`
(not read again), with the seconds it took; the kernels' and myst-nb's per-notebook messages are left out.

`--quick` leaves `#| slow` and `#| cuda` cells unexecuted (as `nbdev_test` does without `--flags`): the CI build.
`--demo-run runs/demo` points 05_stage2's main job and 08_predict's demo at a finished `mrdino demo` run, so its steps
are reused (without it the full build runs the main job in each of the two notebooks). The build never writes into
that run: it works on a copy under the build folder (`demo_run/`, refreshed from the run) and writes 08's
predictions to `predict/` there; 05_stage2 gets the parameters the run was made with (its `main.ipynb` records them).
Staging, cache and Sphinx state live in `_docs_build/` (delete it to start from scratch).
"""
import argparse, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / '_docs_build'
_HIDE = {'export', 'exporti', 'hide', 'default_exp'}
_CHATTER = ('Kernel is running over TCP without encryption',)   # every kernel's start-up warning (ipykernel 7), one per notebook
_UNRENDERED = 'mystnb.unknown_mime_type'                       # myst-nb's warning for an output no page can show
_DOCS_KERNEL = r"""import json as _json, os as _os, re as _re, sys as _sys, tempfile as _tempfile
def _docs_pages():
    "Docs pages only: plotly figures as HTML for the site's plotly.js, and the machine's folders in outputs as a reader's."
    try: import plotly.io as pio
    except ImportError: pass
    else:
        class _SiteHtml(pio.base_renderers.MimetypeRenderer):
            def to_mimebundle(self, fig):             # drawn once the page (and plotly.js, at its end) has loaded
                html = pio.to_html(fig, include_plotlyjs=False, full_html=False, validate=False)
                html = _re.sub(r'<script(?: type="text/javascript")?>(.*?)</script>',
                               lambda m: '<script>window.addEventListener("DOMContentLoaded", function () {'
                                         + m.group(1) + '});</script>', html, flags=_re.S)
                return {'text/html': html}
        pio.renderers['docs_site'] = _SiteHtml(); pio.renderers.default = 'docs_site'
    pairs = _json.loads(_os.environ.get('MRDINO_DOCS_PATHS', '[]')) + [[_os.getcwd(), '']]
    subs = [(_re.escape(_os.path.realpath(_tempfile.gettempdir())) + r'/tmp[\w-]+(/|\b)', '')]   # a lesson's temporary folder
    for p, r in sorted((pr for pr in pairs if len(pr[0]) > 1), key=lambda pr: -len(pr[0])):   # never the root folder itself
        subs.append((_re.escape(p) + (r'\b' if r or p.endswith('/') else '/'), r))
    def short(t):
        for rx, r in subs: t = _re.sub(rx, r, t)
        return t
    def streams(*_):                                  # IPython puts its own write on the streams for each cell: wrap it each time
        for s in (_sys.stdout, _sys.stderr):
            if not getattr(s.write, '_docs_pages', False):
                w = s.write; f = lambda t, w=w: w(short(t)); f._docs_pages = True; s.write = f
    ip = get_ipython()
    ip.events.register('pre_run_cell', streams); streams()
    fix = lambda data: {k: short(v) if isinstance(v, str) else v for k, v in data.items()}
    pub, hook = ip.display_pub.publish, ip.displayhook.write_format_data
    ip.display_pub.publish = lambda data, *a, **k: pub(fix(data), *a, **k)
    ip.displayhook.write_format_data = lambda data, *a, **k: hook(fix(data), *a, **k)
_docs_pages()
"""
_SHOW_DOC = """from nbdev.showdoc import show_doc as _nbdev_show_doc
from IPython.display import Markdown
import importlib
def show_doc(sym, **kw):
    "nbdev's show_doc as Markdown, without the leading rule and source link (docutils allows no transition inside a section)."
    if isinstance(sym, type) and sym.__module__ == '__main__' and _EXPORTED:   # a class made in the notebook has no source
        sym = getattr(importlib.import_module(_EXPORTED), sym.__name__, sym)   # file, so docments would find no field comments
    md = _nbdev_show_doc(sym, **kw)._repr_markdown_()
    md = '\\n'.join(l for l in md.split('\\n') if not l.startswith('[source]('))   # a Quarto link to GitHub
    return Markdown(md.lstrip().removeprefix('---').lstrip())"""

def _cell(kind:str, src:str, tags=()):
    import nbformat
    c = nbformat.v4.new_code_cell(src) if kind == 'code' else nbformat.v4.new_markdown_cell(src)
    if tags: c.metadata['tags'] = list(tags)
    return c

def prepare(nb_path:Path, quick:bool=False, toc:list|None=None, demo_run:Path|None=None):
    "A notebook for myst-nb: nbdev's show_doc cells added, directives turned into cell tags."
    import nbformat
    from nbdev.process import NBProcessor
    from nbdev.processors import add_show_docs
    from nbdev.config import get_config
    proc = NBProcessor(nb_path, procs=[add_show_docs], rm_directives=False)
    proc.process()
    exp = next((d['default_exp'][0] for c in proc.nb.cells if 'default_exp' in (d := getattr(c, 'directives_', None) or {})), None)
    exported = exp and f"{get_config(path=ROOT).lib_name}.{exp}"    # show_doc documents a dataclass from there (fields' docments)
    cells = [_cell('code', _DOCS_KERNEL + _SHOW_DOC + f'\n_EXPORTED = {exported!r}', ['remove-cell'])]
    for c in proc.nb.cells:
        src = c.source
        if c.cell_type != 'code': cells.append(_cell(c.cell_type, src)); continue
        d = getattr(c, 'directives_', None) or {}
        shown = '\n'.join(l for l in src.split('\n') if not re.match(r'\s*#\|', l)).strip('\n')
        tags = list(c.get('metadata', {}).get('tags', []))
        if d.keys() & _HIDE: tags.append('remove-cell'); shown = src
        elif getattr(c, 'has_sd', False) or re.match(r'^show_doc\(', src): tags.append('remove-input')
        if str(d.get('eval:', [''])[0]).lower() == 'false': tags.append('skip-execution')
        if quick and d.keys() & {'slow', 'cuda'}:
            tags.append('skip-execution'); shown = '# not run in the quick docs build (#| slow / #| cuda)\n' + shown
        if not shown.strip(): continue
        cells.append(_cell('code', shown, tags))
        if demo_run and 'parameters' in tags:          # like papermill's injected parameters: reuse a finished run (the build's copy)
            name = 'demo_run' if re.search(r'^demo_run\s*=', src, re.M) else 'out_dir'   # 08_predict reads it, 05_stage2 writes there
            inject = f"{name} = {str(Path(demo_run).resolve())!r}  # tools/docs.py --demo-run"
            if re.search(r'^pred_dir\s*=', src, re.M): inject += f"\npred_dir = {str(Path(demo_run).resolve().parent / 'predict')!r}"
            if name == 'out_dir':                      # the run's own parameters, so that its finished steps are reused
                inject += ''.join(f"\n{k} = {v!r}" for k, v in run_parameters(demo_run).items() if k != 'out_dir')
            cells.append(_cell('code', inject, ['remove-cell']))
    if toc:
        cells.append(_cell('markdown', '```{toctree}\n:hidden:\n:maxdepth: 1\n\n' + '\n'.join(toc) + '\n```'))
    for i, c in enumerate(cells): c['id'] = f'docs-{i}'   # stable ids: an unchanged notebook stages the same bytes
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'},
        'language_info': {'name': 'python'}})
    return nbformat.writes(nb)

def stage(src_dir:Path, quick:bool, demo_run:Path|None=None, nbs_dir:Path=ROOT / 'nbs')->list:
    "Write the prepared notebooks and conf.py to `src_dir`, touching only files whose content changed."
    nbs = sorted(Path(nbs_dir).glob('*.ipynb'))
    names = [p.stem for p in nbs if p.stem != 'index']
    src_dir.mkdir(parents=True, exist_ok=True)
    want = {'conf.py': (ROOT / 'tools' / 'docs_conf.py').read_text(),
            '_static/no-mathjax.js': '// the pages have no math: a local stand-in for the MathJax CDN script\n'}
    js = plotly_js()
    if js: want['_static/plotly.min.js'] = js.read_text()   # the viewer's figures (08_predict), from the installed package
    for p in nbs:
        want[p.name] = prepare(p, quick, toc=names if p.stem == 'index' else None, demo_run=demo_run)
    for f in src_dir.iterdir():
        if f.is_file() and f.name not in want: f.unlink()
    for name, text in want.items():
        f = src_dir / name; f.parent.mkdir(exist_ok=True)
        if not f.exists() or f.read_text() != text: f.write_text(text)
    for im in sorted([*(Path(nbs_dir) / 'images').glob('*'), *(Path(nbs_dir) / 'results').glob('*')]):   # figures and summaries the markdown shows
        f = src_dir / im.parent.name / im.name; f.parent.mkdir(exist_ok=True)
        data = im.read_bytes()
        if im.suffix == '.md': data = b'---\norphan: true\n---\n' + data   # a page the others link to, in no toctree
        if not f.exists() or f.read_bytes() != data: f.write_bytes(data)
    return list(want)

def run_parameters(run:Path)->dict:
    "The parameters a finished `mrdino demo` run was made with (papermill records them in its main.ipynb)."
    nb = Path(run) / 'main.ipynb'
    return json.loads(nb.read_text()).get('metadata', {}).get('papermill', {}).get('parameters', {}) if nb.exists() else {}

def plotly_js()->Path|None:
    "plotly.js as the installed plotly package bundles it (None without plotly)."
    try: import plotly
    except ImportError: return None
    return Path(plotly.__file__).parent / 'package_data' / 'plotly.min.js'

def copy_run(run:Path, dest:Path)->Path:
    "A copy of a finished run for the build to work on (files whose size or time differ copied again; the run is only read)."
    run, dest = Path(run).resolve(), Path(dest)
    for f in sorted(run.rglob('*')):
        if not f.is_file(): continue
        g = dest / f.relative_to(run); st = f.stat()
        if g.exists() and (g.stat().st_size, g.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns): continue
        g.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, g)
    return dest

def chatter(line:str)->bool:
    "Whether a line of the build's stderr is a known message that says nothing about the docs (left out of the log)."
    return any(c in line for c in _CHATTER)

def build(out:Path=ROOT / '_docs', quick:bool=False, build_dir:Path=BUILD, demo_run:Path|None=None,
          nbs_dir:Path=ROOT / 'nbs')->float:
    "Stage, execute (cached) and render the docs into `out`; returns the seconds it took."
    t0 = time.time()
    src = build_dir / ('src_quick' if quick else 'src')
    if demo_run: demo_run = copy_run(demo_run, build_dir / 'demo_run')   # never written: the notebooks get a copy
    stage(src, quick, demo_run, nbs_dir)
    paths = [[str(build_dir.resolve() / 'demo_run'), 'runs/demo'], [str(build_dir.resolve() / 'predict'), 'predictions'],
             [str(ROOT), '.'], [str(ROOT) + '/', ''], [sys.prefix, '.venv'], [str(Path.home()), '~']]
    env = {**os.environ, 'MRDINO_PROGRESS': 'lines', 'HF_HUB_OFFLINE': '1', 'PYDEVD_DISABLE_FILE_VALIDATION': '1',
           'MRDINO_DOCS_CACHE': str(build_dir / 'cache'), 'MRDINO_DOCS_PATHS': json.dumps(paths)}
    env.pop('MPLBACKEND', None)                     # the kernel's inline backend makes the figures
    html = build_dir / ('html_quick' if quick else 'html')  # myst-nb writes jupyter_execute/ next to it, so not in `out`
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-d', str(build_dir / ('doctrees_quick' if quick else 'doctrees')),
           str(src), str(html)]
    print(f"[docs] building the {'quick ' if quick else ''}docs in {build_dir}: one line per page", flush=True)
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, errors='replace')
    unshown = []
    for line in p.stderr:                           # Sphinx's warnings and errors pass, the kernels' start-up chatter does not
        if not chatter(line): sys.stderr.write(line); sys.stderr.flush()
        if _UNRENDERED in line: unshown.append(line.strip())
    if p.wait(): sys.exit(f"docs build failed (sphinx exit {p.returncode}); the reports under {build_dir / 'cache'} "
                          "or the message above name the notebook and cell")
    if unshown: sys.exit(f"docs build failed: {len(unshown)} notebook output(s) no page can show (give the cell an output "
                         "in text/html, an image or text): " + '; '.join(unshown[:5]))
    out = Path(out); shutil.rmtree(out, ignore_errors=True); shutil.copytree(html, out)
    return time.time() - t0

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(ROOT / '_docs'), help='output folder (static site)')
    ap.add_argument('--quick', action='store_true', help='do not run #| slow and #| cuda cells')
    ap.add_argument('--clean', action='store_true', help=f'forget the execution cache and staging ({BUILD.name}/) first')
    ap.add_argument('--demo-run', default=None,
                    help="a finished `mrdino demo --out RUN` folder: 05_stage2's main job and 08_predict's demo reuse its "
                         "steps instead of running them again (the pages then show that run's Tab. 3a)")
    a = ap.parse_args()
    if a.demo_run and not (Path(a.demo_run) / 'results.json').exists():
        sys.exit(f"--demo-run {a.demo_run}: no results.json there; run `.venv/bin/mrdino demo --out {a.demo_run}` first")
    if a.clean: shutil.rmtree(BUILD, ignore_errors=True)
    dt = build(Path(a.out), a.quick, demo_run=a.demo_run and Path(a.demo_run))
    print(f"docs built in {dt:.0f} s: open {Path(a.out).resolve() / 'index.html'}")
