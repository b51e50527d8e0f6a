"""Write README.md from nbs/index.ipynb (nbdev's `nbdev_readme` needs Quarto, which is not installed here).

Markdown cells are copied; code cells become fenced Python blocks; `#| hide` cells are skipped and `#|`
directives removed. The notebook's relative links and images are written from `nbs/` (where JupyterLab and the
docs resolve them), so the README, one folder up, gets `nbs/` in front of them. `python tools/readme.py --check`
exits 1 when README.md is out of date.

Generated blocks: a Markdown cell of a notebook in `GENERATED` may hold `<!-- generated from results/summary.md ... -->` ... `<!-- end of
generated -->`; `python tools/readme.py` first writes the named file (relative to `nbs/`; a sweep's summary, made by
`mrdino sweep-summary RUNS --out nbs/results`) between the two lines in nbs/index.ipynb and nbs/results.ipynb, so the
notebooks, the docs and the README show the summary's table and nobody types it. `--check` also exits 1 when a block differs from its file.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_RELATIVE_LINK = re.compile(r'(\]\()(?![a-z][a-z0-9+.-]*:|[#/])')   # `](target` where target has no scheme, is no anchor or absolute path

def from_root(md:str)->str:
    "Markdown written in `nbs/` with its relative link and image targets made relative to the repository root."
    return _RELATIVE_LINK.sub(r'\1nbs/', md)

_BLOCK = re.compile(r'(<!-- generated from (\S+)[^\n]*-->\n)(.*?)(<!-- end of generated -->)', re.S)

def fill_blocks(md:str, base:Path=ROOT / 'nbs')->str:
    "Markdown with each generated block's body replaced by the current content of the file it names (relative to `base`)."
    def body(m):
        f = base / m.group(2)
        if not f.exists(): raise SystemExit(f"{f} (named by a generated block in nbs/) does not exist: make it with mrdino sweep-summary")
        return m.group(1) + f.read_text().strip('\n') + '\n' + m.group(4)
    return _BLOCK.sub(body, md)

GENERATED = ('index.ipynb', 'results.ipynb')   # notebooks with generated blocks

def refresh_blocks(nb_path:Path, write:bool=True)->bool:
    "Fill a notebook's generated blocks from their files; True when they were out of date (written back when `write`)."
    nb = json.loads(Path(nb_path).read_text())
    stale = False
    for c in nb['cells']:
        if c['cell_type'] != 'markdown': continue
        src = ''.join(c['source']); new = fill_blocks(src)
        if new != src: stale = True; c['source'] = new.splitlines(keepends=True)
    if stale and write: Path(nb_path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return stale

def render(nb_path=ROOT / 'nbs' / 'index.ipynb') -> str:
    nb = json.loads(Path(nb_path).read_text())
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        lines = src.splitlines()
        if any(l.strip().replace(' ', '') in ('#|hide', '#|exporti') for l in lines): continue
        body = '\n'.join(l for l in lines if not l.lstrip().startswith('#|')).strip('\n')
        if not body: continue
        parts.append(from_root(body) if c['cell_type'] == 'markdown' else f"```python\n{body}\n```")
    return '<!-- generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file -->\n\n' \
        + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    if '--check' in sys.argv:
        stale = [n for n in GENERATED if refresh_blocks(ROOT / 'nbs' / n, write=False)]
        if stale: print(f"{', '.join(stale)}: a generated block differs from its file: run python tools/readme.py"); sys.exit(1)
        text, out = render(), ROOT / 'README.md'
        ok = out.exists() and out.read_text() == text
        print('README.md is up to date' if ok else 'README.md is out of date: run python tools/readme.py')
        sys.exit(0 if ok else 1)
    for n in GENERATED:
        if refresh_blocks(ROOT / 'nbs' / n): print(f'refreshed the generated blocks of nbs/{n}')
    text, out = render(), ROOT / 'README.md'
    out.write_text(text)
    print(f'wrote {out}')
