"""``python -m scoretutor``: the command line (see :mod:`scoretutor.cli`)."""

import sys

from scoretutor.cli import main

if __name__ == "__main__":
    sys.exit(main())
