"""``python -m benchmarks [--quick] [--json PATH]``: the whole suite, one table of aims.

The benchmarks are scripts (``python benchmarks/bench_beam.py`` imports ``_common`` from its
own folder); this folder goes first on ``sys.path`` so that the suite imports them the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import main  # after the path above

if __name__ == "__main__":
    sys.exit(main())
