"""``python -m tumorpde`` runs the command-line interface."""

import sys

from tumorpde.cli import main

sys.exit(main())
