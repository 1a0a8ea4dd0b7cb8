"""``python -m benchmarks.run [options]``: the full benchmark, same as ``cutmix bench``.

Example:
    python -m benchmarks.run --threads 1 --json benchmarks/results.json
"""

from __future__ import annotations

from cutmix.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
