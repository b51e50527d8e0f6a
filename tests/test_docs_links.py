"""What readers follow stays inside the project: no file points outside it, and every relative link resolves.

The method's facts live in `nbs/method.ipynb`; nothing may refer to a specification or data folder next to the
repository (`../shared`) that a clone does not have. Relative links and images in the notebooks' Markdown (resolved
from `nbs/`, as JupyterLab and the docs resolve them) and in the README (from the repository root) must name files
of the repository.
"""
import json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRS = ['.ci', 'bench', 'mrdino', 'nbs', 'tests', 'tools']
TOP = ['README.md', 'settings.ini', 'setup.py', 'constraints.txt', '.gitignore']
TEXT = {'', '.py', '.ipynb', '.md', '.ini', '.txt', '.cfg', '.toml', '.yml', '.yaml', '.sh', '.json'}
OUTSIDE = re.compile(r'\.\./shared|/work/shared|SPEC\.md|\bSPEC §')
LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+"[^"]*")?\s*\)')   # [text](target "title")

def project_files():
    "The project's text files (what a clone holds), without caches, checkpoints and this test."
    files = [ROOT / f for f in TOP if (ROOT / f).exists()]
    for d in DIRS:
        files += [p for p in sorted((ROOT / d).rglob('*')) if p.is_file() and p.suffix in TEXT
                  and not any(part.startswith('.') or part == '__pycache__' for part in p.relative_to(ROOT / d).parts[:-1])]
    return [p for p in files if p.resolve() != Path(__file__).resolve()]

def markdown_of(path:Path)->str:
    "The Markdown a reader sees: a notebook's Markdown cells, or the file itself."
    if path.suffix == '.ipynb':
        return '\n\n'.join(''.join(c['source']) for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'markdown')
    return path.read_text()

def relative_links(md:str)->list:
    "Targets of the Markdown links and images that point at a file (no URL, no in-page anchor); code is not Markdown."
    md = re.sub(r'```.*?```', '', md, flags=re.S)
    md = re.sub(r'`[^`\n]*`', '', md)
    out = []
    for t in LINK.findall(md):
        if re.match(r'[a-zA-Z][a-zA-Z0-9+.-]*:', t) or t.startswith('#'): continue
        out.append(t.split('#')[0].split('?')[0])
    return out

def test_nothing_points_outside_the_project():
    bad = []
    for p in project_files():
        try: text = p.read_text()
        except UnicodeDecodeError: continue
        bad += [f"{p.relative_to(ROOT)}: {m.group(0)!r}" for m in OUTSIDE.finditer(text)]
    assert not bad, ("these files refer to a specification or data outside the repository; link nbs/method.ipynb "
                     "or describe the file instead:\n" + '\n'.join(bad))

def test_relative_links_resolve():
    md = ('See [the method](method.ipynb#stage-2), ![fig](images/a.png "a figure"), [web](https://x.org/a.md), '
          '[anchor](#top), [mail](mailto:a@b.c), `[code](not/a/link.md)` and\n```\n[fenced](no.md)\n```\n[nested [x]](b.md)')
    assert relative_links(md) == ['method.ipynb', 'images/a.png', 'b.md']        # what counts as a link to a file
    missing = []
    for path in [ROOT / 'README.md'] + sorted((ROOT / 'nbs').glob('*.ipynb')):
        for t in relative_links(markdown_of(path)):
            target = (path.parent / t).resolve()
            if not target.is_file() or ROOT not in target.parents: missing.append(f"{path.relative_to(ROOT)}: {t}")
    assert not missing, "links to files that are not in the repository (notebooks link from nbs/):\n" + '\n'.join(missing)

def test_method_page_is_linked():
    "The notebooks that rest on the method's facts, and the README, send readers to the method page."
    for name in ['01_flow', '02_pseudolabels', '03_dinosaur', '04_stage1', '05_stage2', '06_metrics', 'index']:
        assert 'method.ipynb' in relative_links(markdown_of(ROOT / 'nbs' / f'{name}.ipynb')), name
    assert 'nbs/method.ipynb' in relative_links((ROOT / 'README.md').read_text())

def test_every_test_named_by_the_promises_exists():
    "`00_data`'s table of promises names the tests that hold each one: each `file::test` must be a test of tests/."
    md = markdown_of(ROOT / 'nbs' / '00_data.ipynb')
    table = md.split('### What each promise covers', 1)[1]
    named, current = [], None
    for m in re.finditer(r'`(test_\w+)?::(test_\w+)`', table):         # `file::test`, or `::test` for the file before it
        current = m.group(1) or current
        named.append((current, m.group(2)))
    assert len(named) > 30, named
    missing = [f"{f}::{t}" for f, t in named if not re.search(rf'^def {t}\(', (ROOT / 'tests' / f'{f}.py').read_text(), re.M)]
    assert not missing, f"00_data's promises name tests that do not exist: {missing}"
