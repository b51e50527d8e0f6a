"""The rendered docs, as a reader gets them: `tools/docs.py --quick` builds the site (reusing the execution cache in
`_docs_build/` where the notebooks' code has not changed), then headless Chromium opens every page.

Checked: no page refers to a script, stylesheet, font or image on the network; every page loads with no console
error; each notebook page that draws figures (outside `#| slow`/`#| cuda` cells) shows them, loaded; the
explorers show their static snapshot; each notebook that exports functions shows nbdev's API tables (docments);
the navigation lists the notebooks in pipeline order; search finds a function; 08's prediction viewer is drawn
(plotly, from the site's own plotly.js) and its slider reads "frame N"; no page shows a folder of the build machine
(the repository, a temporary folder, the virtual environment, the home folder), a library warning, or a loop's
progress more than once; results are HTML tables; every link between pages (and to an anchor) resolves.
With `MRDINO_DOCS_SHOTS=DIR`, screenshots of the 05, 08 and results pages are saved there. With
`MRDINO_DOCS_SITE=DIR`, the checks run on a site built beforehand instead (e.g. the full build,
`tools/docs.py --demo-run runs/demo --out DIR`).
Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); skipped with a message where absent.
"""
import json, os, re, shutil, subprocess, sys, tempfile, time
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
    if os.environ.get('MRDINO_DOCS_SITE'):            # a site built beforehand, e.g. the full build with a demo run
        return Path(os.environ['MRDINO_DOCS_SITE'])
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

def _article_text(browser):
    "What the page says besides its code: prose and outputs."
    return browser.execute_script("const a = document.querySelector('article').cloneNode(true); "
                                  "a.querySelectorAll('.cell_input').forEach(e => e.remove()); document.body.appendChild(a); "
                                  "const t = a.innerText; a.remove(); return t")

def test_prediction_viewer_renders(site, browser):
    _open(browser, site / '08_predict.html')
    for _ in range(100):
        n = browser.execute_script("return document.querySelectorAll('article .plotly-graph-div .main-svg').length")
        if n: break
        time.sleep(0.1)
    assert n, "08_predict.html: the prediction viewer (plotly) is not drawn"
    sliders = browser.execute_script("return [...document.querySelectorAll('article .slider-container')]"
                                     ".map(s => [...s.querySelectorAll('text')].map(e => e.textContent))")   # one per viewer
    assert sliders and all(re.fullmatch(r'frame \d+', s[0]) and all(re.fullmatch(r'\d+', t) for t in s[1:]) for s in sliders), \
        [s[:5] for s in sliders]
    widths = browser.execute_script("return [document.querySelector('article').getBoundingClientRect().width, "
                                    "...[...document.querySelectorAll('article .plotly-graph-div')].map(e => e.getBoundingClientRect().width)]")
    assert all(w <= widths[0] for w in widths[1:]), f"viewer wider than the content column: {widths}"
    buttons = browser.execute_script("return [...document.querySelectorAll('article .updatemenu-item-text')].map(e => e.textContent)")
    assert {'MR-DINOSAUR', 'DINOSAUR', 'GT'} <= set(buttons), buttons

def machine_paths()->list:
    "Folders of the build machine that no page may show."
    return [str(ROOT), tempfile.gettempdir().rstrip('/') + '/', sys.prefix, str(Path.home()) + '/']

@pytest.mark.parametrize('nb', NBS)
def test_page_shows_no_machine_paths_warnings_or_repeated_progress(site, browser, nb):
    _open(browser, site / f'{nb}.html')
    text = _article_text(browser)
    found = [p for p in machine_paths() if p in text]
    assert not found, f"{nb}.html shows folders of the build machine: {found}: " + '; '.join(
        l for l in text.split('\n') if any(p in l for p in found))[:1500]
    warn = [l for l in text.split('\n') if re.search(r'\b\w*Warning: ', l)]
    assert not warn, f"{nb}.html shows library warnings: {warn[:5]}"
    outputs = browser.execute_script("return [...document.querySelectorAll('article .cell_output')].map(e => e.innerText)")
    for out in outputs:
        loops = [m.group(1) for m in re.finditer(r'^(.+?): +(?:\d+% \d+/\d+|\d+ \w+) \[', out, re.M)]   # progress lines
        again = sorted({d for d in loops if loops.count(d) > 1})
        assert not again, f"{nb}.html: progress of {again} shown more than once in one output:\n{out[:1500]}"
        assert not re.search(r'^.+?: +0% 0/', out, re.M), f"{nb}.html: an opening 0% progress line:\n{out[:800]}"
        assert not re.search(r'\d{5,}\.\d+ ?\w+/s', out), f"{nb}.html: a speed with more than three digits:\n{out[:800]}"
        assert not re.search(r'np\.(?:int|float)\d+\(', out), f"{nb}.html: numpy scalars printed as np.int64(...):\n{out[:800]}"

def test_results_are_tables(site, browser):
    # the results page; results_table's example in 05a; 05's own Tab. 3a where its main job ran (the full build: the
    # quick build leaves those #| slow cells unexecuted)
    for page, sel in [('results.html', 'article table'), ('05a_pipeline.html', 'article table.tab3a'),
                      ('05_stage2.html', 'article table.tab3a')]:
        _open(browser, site / page)
        rows = browser.execute_script(f"return [...document.querySelectorAll('{sel} tr')].map(r => r.innerText)")
        quick = 'not run in the quick docs build' in browser.execute_script("return document.querySelector('article').innerText")
        if not (page == '05_stage2.html' and quick):
            assert any('DINOSAUR' in r for r in rows), f"{page}: no results table ({sel}): {rows[:5]}"
        pre = browser.execute_script("return [...document.querySelectorAll('article pre')].map(p => p.innerText)")
        assert not any(re.search(r'f1_50\s+ap_50', p) for p in pre), f"{page}: Tab. 3a printed as text"

def test_every_link_resolves(site):
    missing = []
    for page in sorted(site.glob('*.html')):
        for href in re.findall(r'<a [^>]*href="([^"]+)"', page.read_text(errors='replace')):
            if re.match(r'[a-z]+:', href) or href.startswith('#') and len(href) == 1: continue
            path, _, anchor = href.partition('#')
            target = (page.parent / path).resolve() if path else page
            if not target.is_file(): missing.append(f"{page.name}: {href}"); continue
            if anchor and target.suffix == '.html' and f'id="{anchor}"' not in target.read_text(errors='replace'):
                missing.append(f"{page.name}: {href} (no such anchor)")
    assert not missing, '\n'.join(missing[:30])

def test_screenshots(site, browser):
    "Screenshots of the 05, 08 and results pages, where MRDINO_DOCS_SHOTS names a folder (for a person to look at)."
    shots = os.environ.get('MRDINO_DOCS_SHOTS')
    if not shots: pytest.skip('MRDINO_DOCS_SHOTS is not set')
    Path(shots).mkdir(parents=True, exist_ok=True)
    for nb in ['05_stage2', '08_predict', 'results']:
        _open(browser, site / f'{nb}.html'); time.sleep(1)
        h = browser.execute_script('return document.body.scrollHeight')
        browser.set_window_size(1280, min(h, 16000)); time.sleep(0.5)
        assert browser.save_screenshot(str(Path(shots) / f'{nb}.png'))
    browser.set_window_size(1280, 1000)
