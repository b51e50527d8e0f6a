"""Write README.md from nbs/index.ipynb (nbdev's `nbdev_readme` needs Quarto, which is not installed here).

Markdown cells are copied; code cells become fenced Python blocks; `#| hide` cells are skipped and `#|`
directives removed. The notebook's relative links and images are written from `nbs/` (where JupyterLab and the
docs resolve them), so the README, one folder up, gets `nbs/` in front of them. `python tools/readme.py --check`
exits 1 when README.md is out of date.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_RELATIVE_LINK = re.compile(r'(\]\()(?![a-z][a-z0-9+.-]*:|[#/])')   # `](target` where target has no scheme, is no anchor or absolute path

def from_root(md:str)->str:
    "Markdown written in `nbs/` with its relative link and image targets made relative to the repository root."
    return _RELATIVE_LINK.sub(r'\1nbs/', md)

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
    text, out = render(), ROOT / 'README.md'
    if '--check' in sys.argv:
        ok = out.exists() and out.read_text() == text
        print('README.md is up to date' if ok else 'README.md is out of date: run python tools/readme.py')
        sys.exit(0 if ok else 1)
    out.write_text(text)
    print(f'wrote {out}')
