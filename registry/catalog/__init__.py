"""The registry's catalog: a static, offline website of every dataset and model, from Git.

``registry catalog build OUT_DIR`` (:func:`build`) writes it; ``registry catalog serve``
(:func:`serve`) builds it into a temporary folder and serves it on 127.0.0.1;
``registry datasets search`` (:func:`search_datasets`) searches the same index as the site.

Modules: ``collect`` (what the pages show, from Git), ``search`` (the index and its matching
rule), ``markdown`` (cards rendered safely), ``drawing`` (charts, the lineage graph),
``previews`` (examples of cached versions), ``pages`` (HTML), ``site`` (writing and serving).
"""

from __future__ import annotations

from registry.catalog.search import DatasetMatch, search_datasets
from registry.catalog.site import BuildReport, build, serve

__all__ = ["BuildReport", "DatasetMatch", "build", "search_datasets", "serve"]
