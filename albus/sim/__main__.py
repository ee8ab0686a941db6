"""`python -m albus.sim`."""

import sys

from albus.sim.cli import main

sys.exit(main())
