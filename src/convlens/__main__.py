"""``python -m convlens`` runs the command line."""

import sys

from convlens.cli import main

sys.exit(main())
