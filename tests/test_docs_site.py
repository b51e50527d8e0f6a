"""The rendered docs, as a reader gets them: `tools/docs.py --quick` builds the site (reusing the execution cache in
`_docs_build/` where the notebooks' code has not changed), then headless Chromium opens every page.

Checked: no page refers to a script, stylesheet, font or image on the network; every page loads with no console
error; each notebook page that draws figures (outside `#| slow`/`#| cuda` cells) shows them, loaded; the
explorers show their static snapshot; each notebook that exports functions shows nbdev's API tables (docments);
the navigation lists the notebooks in pipeline order; search finds a function.
Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); skipped with a message where absent.
"""
import json, os, re, shutil, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted(p.stem for p in (ROOT / 'nbs').glob('*.ipynb'))
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                '--disable-component-update', '--disable-sync', '--no-first-run', '--window-size=1280,1000']

def _cells(nb):
    return [(c['cell_type'], ''.join(c['source'])) for c in json.loads((ROOT / 'nbs' / f'{nb}.ipynb').read_text())['cells']]

def _runs(src): return not re.search(r'^#\|\s*(slow|cuda|hide|eval:\s*false)', src, re.M)

def draws_figures(nb):
    "The notebook has a cell run in the quick build that plots or shows an explorer."
    return any(k == 'code' and _runs(s) and re.search(r'plt\.|imshow|Explorer\(', s) for k, s in _cells(nb))

def exports_api(nb):
    "The notebook exports a public function or class (nbdev adds its show_doc table)."
    return any(k == 'code' and re.match(r'#\|\s*export\s*\n', s) and re.search(r'^(def|class) [A-Za-z]', s, re.M)
               for k, s in _cells(nb))

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')
    t0 = time.time()
    r = subprocess.run([sys.executable, 'tools/docs.py', '--quick', '--out', str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=3000)
    assert r.returncode == 0, f"tools/docs.py --quick failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    print(f"docs build (--quick): {time.time() - t0:.0f} s")
    return out

@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    exe, drv = shutil.which('chromium'), shutil.which('chromedriver')
    if not (exe and drv):
        pytest.skip("headless Chromium is not installed: `apt-get install chromium chromium-driver` (.ci/run does it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = exe
    for f in CHROME_FLAGS + [f'--user-data-dir={tmp_path_factory.mktemp("chrome-profile")}']: o.add_argument(f)
    o.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    d = webdriver.Chrome(service=Service(drv), options=o)
    yield d
    d.quit()

def _open(browser, path):
    browser.get(path.as_uri())
    for _ in range(100):
        if browser.execute_script('return document.readyState') == 'complete': break
        time.sleep(0.05)
    return [e for e in browser.get_log('browser') if e['level'] == 'SEVERE']

def test_no_network_assets(site):
    pages = list(site.rglob('*.html')) + list(site.rglob('*.css')) + list(site.rglob('*.js'))
    bad = []
    for p in pages:
        t = p.read_text(errors='replace')
        bad += [(p.name, m) for m in re.findall(r'<(?:script|link|img|iframe)[^>]+(?:src|href)="(https?://[^"]+)"', t)]
        bad += [(p.name, m) for m in re.findall(r'url\(\s*[\'"]?(https?://[^)\'"]+)', t)]
        bad += [(p.name, m) for m in re.findall(r'@import\s+[\'"]?(https?://[^\'";]+)', t)]
    assert not bad, f"assets fetched from the network: {bad[:10]}"

def test_every_page_loads_without_console_errors(site, browser):
    pages = [site / f'{nb}.html' for nb in NBS] + [site / 'search.html', site / 'genindex.html']
    errors = {p.name: _open(browser, p) for p in pages}
    assert all((site / f'{nb}.html').exists() for nb in NBS), sorted(p.name for p in site.glob('*.html'))
    assert not any(errors.values()), {k: v for k, v in errors.items() if v}

@pytest.mark.parametrize('nb', NBS)
def test_notebook_page(site, browser, nb):
    _open(browser, site / f'{nb}.html')
    js = browser.execute_script
    title = js("return document.querySelector('h1') ? document.querySelector('h1').textContent : ''")
    assert title.strip(), f"{nb}.html has no title"
    assert '#| export' not in js('return document.body.innerText') and 'default_exp' not in js('return document.body.innerText')
    imgs = js("return [...document.querySelectorAll('article img')].map(i => [i.naturalWidth, i.src.slice(0, 30)])")
    assert all(w > 0 for w, _ in imgs), f"{nb}.html: images that did not load: {imgs}"
    if draws_figures(nb): assert imgs, f"{nb}.html shows no figure"
    if nb in ('01_flow', '02_pseudolabels'):             # the explorers' static snapshots
        assert any(s.startswith('data:image/png') for _, s in imgs), f"{nb}.html: no explorer snapshot"
    heads = js("return [...document.querySelectorAll('article table thead')].map(t => t.innerText)")
    if exports_api(nb): assert any('Details' in h for h in heads), f"{nb}.html has no API (show_doc) table"

def test_api_table_content(site, browser):
    "atomic_write's docments, as written in 00_data, appear as table rows."
    _open(browser, site / '00_data.html')
    rows = browser.execute_script("return [...document.querySelectorAll('article table tr')].map(r => r.innerText)")
    assert any(r.startswith('path') and 'destination file' in r for r in rows), rows[:20]

def test_navigation_in_pipeline_order(site, browser):
    _open(browser, site / 'index.html')
    hrefs = browser.execute_script("return [...document.querySelectorAll('.sidebar-tree a.reference')].map(a => a.getAttribute('href'))")
    order = [h.split('.html')[0].split('/')[-1] for h in hrefs if h.endswith('.html')]
    want = [nb for nb in NBS if nb != 'index']
    assert [o for o in order if o in want] == want, order

def test_search_finds_a_function(site, browser):
    browser.get((site / 'search.html').as_uri() + '?q=atomic_write')
    for _ in range(100):
        links = browser.execute_script("return [...document.querySelectorAll('#search-results a')].map(a => a.href)")
        if links: break
        time.sleep(0.1)
    assert any('00_data.html' in l for l in links), links
