"""``python -m cutmix ...`` is the ``cutmix`` command."""

import sys

from cutmix.cli import main

if __name__ == "__main__":
    sys.exit(main())
