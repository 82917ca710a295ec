"""Sphinx settings of the course site. `python docs/build_site.py OUT` stages the sources and runs
Sphinx with this folder as its configuration folder: do not run sphinx-build on the repository.

The build script passes what it knows through the environment: SITE_REPO (owner/name on GitHub),
SITE_COMMIT (the commit the site is built from) and SITE_BRANCH (where the launch buttons open).
"""

from __future__ import annotations

import os

repo = os.environ.get("SITE_REPO", "shape-descriptors-course/shape-descriptors-course")
commit = os.environ.get("SITE_COMMIT", "main")
branch = os.environ.get("SITE_BRANCH", "main")

project = "Shape descriptors for segmentation"
author = "The shape-descriptors-course contributors"
copyright = "the shape-descriptors-course contributors (code MIT, course text CC BY 4.0)"

# README.md is the landing page: staged as index.md beside docs/ and notebooks/, so that its relative
# links are the same as on GitHub.
extensions = ["myst_nb", "autodoc2"]
exclude_patterns = ["_build", ".doctrees", "**.ipynb_checkpoints"]

# MyST: $...$ maths in the notebooks, anchors for headings so that `page.md#a-heading` links resolve.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# The notebooks are executed by the build script (fast mode, widget state saved) before Sphinx runs:
# Sphinx only renders what they hold.
nb_execution_mode = "off"
nb_merge_streams = True

# API reference: one page per module under api/, read from the source (nothing is imported), the
# docstrings read as Markdown (MyST), as they are written.
autodoc2_packages = [
    {"path": os.environ.get("SITE_LIBRARY", "../../tutorial_lib"), "auto_mode": True}
]
autodoc2_output_dir = "api"
autodoc2_render_plugin = "myst"
autodoc2_docstring_parser_regexes = [(r".*", "myst")]
autodoc2_hidden_objects = ["private", "dunder", "inherited"]
autodoc2_index_template = None
autodoc2_sort_names = True

html_title = "Shape descriptors for segmentation"
html_theme = "sphinx_book_theme"
html_theme_options = {
    "repository_url": f"https://github.com/{repo}",
    "repository_branch": branch,
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {
        "colab_url": "https://colab.research.google.com",
        "binderhub_url": "https://mybinder.org",
        "notebook_interface": "jupyterlab",
    },
    "show_toc_level": 2,
    "extra_footer": (
        f"Built from commit <code>{commit[:12]}</code>; the notebooks were run in fast mode "
        "(<code>TUTORIAL_FAST=1</code>) on a CPU."
    ),
}
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_last_updated_fmt = None
html_show_sourcelink = False
