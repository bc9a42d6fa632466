"""Sphinx configuration for the trio_llm documentation.

The build is offline by design: no intersphinx, no extension that fetches anything. Types from
other projects therefore cannot be linked; ``nitpick_ignore_regex`` below lists exactly those.

Build: ``sphinx-build -W --keep-going -n -b html docs docs/_build/html`` (``nox -s docs``).
"""

from __future__ import annotations

from typing import Any

import trio_llm

project = "trio_llm"
author = "trio_llm developers"
copyright = "trio_llm developers"  # noqa: A001 - the name Sphinx reads
release = trio_llm.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxcontrib_trio",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

html_theme = "furo"
html_title = f"trio_llm {release}"

# MyST: anchors for headings down to level 3, so pages can link to sections.
myst_heading_anchors = 3

# Google-style docstrings only.
napoleon_google_docstring = True
napoleon_numpy_docstring = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# sphinxcontrib-trio replaces the function and method documenters with class-based ones;
# Sphinx 9 only records type hints for those in its legacy class-based mode, so use it
# throughout (otherwise ``automethod`` entries lose their parameter and return types).
autodoc_use_legacy_class_based = True

nitpicky = True
nitpick_ignore_regex = [
    # Other projects' types: without intersphinx (which would download inventories) there is
    # nothing to link them to.
    (r"py:.*", r"httpx\..+"),
    (r"py:.*", r"ssl\..+"),
    (r"py:.*", r"os\.PathLike"),
    (r"py:.*", r"random\.Random"),
    (r"py:.*", r"collections\.(abc\.)?.+"),
    (r"py:.*", r"contextlib\..+"),
    (r"py:.*", r"trio\..+"),
    # trio_llm's typing aliases (private names for "what may be passed as messages/media",
    # a role literal and a content part union); the pages describe what they accept.
    (r"py:class", r"MessagesInput|MediaList|Role|Part|Target"),
    # The fan-out helpers' keyword options (the same as Provider.stream's, typed as a TypedDict).
    (r"py:class", r"trio_llm\._fanout\.ChatOptions"),
]


def _drop_event_stream_constructor(app: Any, what: str, name: str, *_args: Any) -> None:
    # EventStream is made by Provider.stream(), never by callers: its constructor's
    # parameters (a private request type among them) are not API, so do not list them.
    if name == "trio_llm.EventStream":
        document = getattr(app.env, "current_document", None)
        annotations = getattr(document, "autodoc_annotations", None)
        if annotations is None:
            annotations = app.env.temp_data.get("annotations", {})
        annotations.pop(name, None)


def setup(app: Any) -> None:
    # After autodoc has recorded the type hints (priority 500).
    app.connect("autodoc-process-signature", _drop_event_stream_constructor, priority=600)
