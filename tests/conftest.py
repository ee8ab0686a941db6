"""Shared pytest plugins: the real control plane, the Avi simulator and the NATS broker."""

pytest_plugins = [
    "albus.controlplane.testing",
    "albus.sim.testing",
    "albus.broker_testing",
    "albus.testhosts_testing",
]
