"""``python -m benchmarks.pipeline [flags]`` (or ``python benchmarks/pipeline [flags]``)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.pipeline.main import main  # noqa: E402

raise SystemExit(main())
