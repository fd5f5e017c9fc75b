"""``python -m models.legacy``: :func:`models.legacy.cli.main`."""

import sys

from models.legacy.cli import main

if __name__ == "__main__":
    sys.exit(main())
