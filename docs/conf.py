"""Sphinx configuration of xpit's documentation (``bash ci/docs`` builds it).

The build needs no network: no intersphinx. Names of other libraries that docstrings
mention (NumPy, PyTorch, Keras...) are left unlinked, and listed in ``nitpick_ignore_regex``
so that ``-n`` still checks every reference inside xpit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))
# Keras reads its backend once, at import: the API pages and the gallery use JAX, as the
# tests do. SciPy in array-API mode, as scikit-learn's array-API dispatch needs (tests too).
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("SCIPY_ARRAY_API", "1")
# PyTorch's OpenMP threads would spin after each call and slow what the gallery and the
# performance page run next in this process (xpit bench sets the same).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import xpit  # noqa: E402

project = "xpit"
author = "xpit developers"
copyright = "xpit developers"
release = xpit.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
    "myst_parser",
    "xpit_measured",  # docs/_ext: the accuracy and speed pages, measured at build time
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json"]
templates_path = ["_templates"]
default_role = "literal"  # `x` in a page is code, as ``x``

# --- API reference --------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # the numpydoc sections say the types
autodoc_inherit_docstrings = False  # forward(), get_config()...: documented by their framework
autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False  # the class template lists the documented methods
numpydoc_attributes_as_param_list = True

# numpydoc validation of every docstring that autodoc renders. Not required:
#   ES01  an extended summary: a one-line summary and the Notes say enough for many;
#   SA01  a See Also section: added where a neighbour helps, not to every object.
numpydoc_validation_checks = {"all", "ES01", "SA01"}
# The ufuncs' docstrings are written in C (src/xpit/kernels/_ufuncs.c): their ufunc keywords
# (casting, dtype, order, subok, signature) are documented together as **kwargs, as NumPy
# documents its own; their summaries wrap over two lines.
_UFUNC = r"\*\*kwargs\n\s+The other ufunc keywords"
numpydoc_validation_overrides = {"PR01": [_UFUNC], "PR02": [_UFUNC], "SS06": [_UFUNC]}
# Module constants (xpit.batch.FUNCTIONS, xpit.plot.FIGURES) are described by a ``#:``
# comment, not a numpydoc docstring: the checks for functions do not apply.
numpydoc_validation_exclude = {r"^xpit\.batch\.FUNCTIONS$", r"^xpit\.plot\.FIGURES$"}

# -n: every cross-reference must resolve, except to other libraries and the standard library
# (no intersphinx: the build is offline).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|scipy|torch|jax|keras|sklearn|dask|cupy|matplotlib|contextvars)(\..+)?"),
]

# --- pages ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"xpit {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 8,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
# Pages without sub-pages would show an empty "Section Navigation" column: give their width
# to the content instead (the performance tables are wide).
html_sidebars = {page: [] for page in ("install", "accuracy", "performance", "how_it_works",
                                       "contributing", "changelog")}
html_show_sourcelink = False
html_static_path = ["_static"]
html_favicon = "_static/xpit.svg"  # the curve itself; browsers ask for one on every page
# The theme's first visit (nothing in localStorage yet) otherwise logs "invalid theme mode".
html_context = {"default_mode": "auto"}
pygments_style = "default"
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # included Markdown files start at their own "#" level


# --- gallery: examples/ run at build time, their figures on their pages ----------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",  # run every example, not only plot_*.py
    "reset_argv": "xpit_measured.gallery_argv",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("xpit",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"xpit": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "write_computation_times": False,  # its page loads scripts from a CDN: the site is offline
}


def _ufunc_in_a_table(app, what, name, obj, options, signature, return_annotation):
    """Autosummary's table sees a ufunc as data: keep numpydoc from giving it a signature,
    which Sphinx 9 cannot place there (its pages, made with autofunction, show one)."""
    import numpy as np

    if what == "data" and isinstance(obj, np.ufunc):
        return None, None
    return None


def setup(app):
    app.connect("autodoc-process-signature", _ufunc_in_a_table, priority=400)
