"""A simulator of the Avi (NSX ALB) controller REST API. See docs/simulator.md."""

from albus.sim.seed import DEFAULT_TEST_SEED
from albus.sim.server import SimProcess, SimServer

__all__ = ["DEFAULT_TEST_SEED", "SimProcess", "SimServer"]
