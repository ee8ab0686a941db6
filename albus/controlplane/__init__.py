"""The test control plane: real etcd, kube-apiserver and kube-controller-manager.

``python -m albus.controlplane build`` builds them from the Go module proxy
(see :mod:`albus.controlplane.builder`); :class:`~albus.controlplane.launcher.ControlPlane`
runs them; :mod:`albus.controlplane.testing` is the pytest plugin.
"""
