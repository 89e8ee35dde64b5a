"""Compatibility path: ``registry.vertex.job_spec`` and ``registry.vertex.submit``, as the README
documented them before the package was split. New code imports :mod:`registry.compute` (the
registry-aware entry points) or :mod:`registry.cloud.vertex` (the job specification itself)."""

from registry.cloud.vertex import *  # noqa: F403
from registry.cloud.vertex import __all__ as _vertex_all
from registry.compute import job_spec

__all__ = [*_vertex_all, "job_spec"]
