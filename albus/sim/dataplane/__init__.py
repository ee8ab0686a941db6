"""A small data plane for the simulator: the virtual services forward real traffic on their VIPs.

A test and demo tool, not a load balancer: asyncio, a few hundred lines,
off unless enabled (`--dataplane`, `SimServer(dataplane=True)`). See the
"Data plane" section of docs/simulator.md.
"""

from albus.sim.dataplane.listeners import DataPlane

__all__ = ["DataPlane"]
