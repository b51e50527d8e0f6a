# Sphinx configuration of the offline docs; tools/docs.py copies it next to the prepared notebooks as conf.py.
import os
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
suppress_warnings = ['myst.header', 'mystnb.unknown_mime_type']
