# Sphinx configuration of the offline docs; tools/docs.py copies it next to the prepared notebooks as conf.py.
import logging, os, time
project = 'mrdino'
author = 'mrdino developers'
copyright = '2026 onwards, mrdino developers'
extensions = ['myst_nb']
root_doc = 'index'
exclude_patterns = ['_build', '**.ipynb_checkpoints']
html_theme = 'furo'                               # assets are bundled in the package: nothing from a CDN
html_title = 'mrdino'
html_show_sourcelink = False
html_copy_source = False
html_static_path = ['_static']
mathjax_path = 'no-mathjax.js'                    # no math in the notebooks; never the MathJax CDN

nb_execution_mode = 'cache'                       # jupyter-cache: a notebook runs again only when its code changed
nb_execution_cache_path = os.environ.get('MRDINO_DOCS_CACHE', '.jupyter_cache')
nb_execution_in_temp = True                       # files the notebooks write go to a temporary folder
nb_execution_timeout = 7200
nb_execution_raise_on_error = True                # a notebook that fails fails the build
nb_execution_show_tb = True
nb_ipywidgets_js = {}                             # no widget manager from a CDN: widgets show their static snapshot
nb_mime_priority_overrides = [('html', 'application/vnd.jupyter.widget-view+json', None),
                              ('html', 'application/vnd.jupyter.widget-state+json', None)]
nb_merge_streams = True
nb_render_markdown_format = 'myst'              # show_doc's Markdown tables (commonmark has none)
myst_heading_anchors = 3
suppress_warnings = ['myst.header']              # an output no page can show is a warning, and tools/docs.py fails on it

# The build log: one line per page (`page_line`) instead of a run of anonymous per-notebook messages.
logging.getLogger('traitlets').setLevel(logging.WARNING)   # nbclient's INFO "Executing notebook with kernel", per notebook

def page_line(docname:str, how:str, seconds:float|None=None)->str:
    "The log line of one page: its name, how its outputs were obtained, and the seconds it took to read."
    return (f"[docs] {docname:<16} {how:<9}" + ("" if seconds is None else f" {seconds:6.1f} s")).rstrip()

def execution_kind(message:str)->str|None:
    "'executed', 'cached' or 'failed' from myst-nb's log message about a notebook's outputs; None for other messages."
    for words, kind in (('Using cached notebook', 'cached'), ('Executed notebook in', 'executed'),
                        ('Executing notebook failed', 'failed')):
        if words in message: return kind
    return None

class _ExecutionKinds(logging.Handler):
    "Records what myst-nb says about the outputs of the page being read (Sphinx's -q hides these INFO messages)."
    def __init__(self, app): super().__init__(logging.INFO); self.app, self.kinds = app, {}
    def emit(self, record):
        kind = execution_kind(record.getMessage())
        if kind: self.kinds[self.app.env.docname] = kind

def setup(app):
    kinds, started = _ExecutionKinds(app), {}
    logging.getLogger('sphinx').addHandler(kinds)
    def before(app, env, docnames):
        for d in sorted(env.found_docs - set(docnames)): print(page_line(d, 'unchanged (not read again)'), flush=True)
    def start(app, docname, source): started[docname] = time.time()
    def done(app, doctree):
        d = app.env.docname
        print(page_line(d, kinds.kinds.pop(d, 'read'), time.time() - started.pop(d, time.time())), flush=True)
    def plotly(app, pagename, templatename, context, doctree):   # plotly.js only on pages that draw a plotly figure
        if 'Plotly.newPlot' in context.get('body', ''): app.add_js_file('plotly.min.js')
    app.connect('html-page-context', plotly)
    app.connect('env-before-read-docs', before)
    app.connect('source-read', start)
    app.connect('doctree-read', done)
