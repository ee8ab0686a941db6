"""Lease names are valid object names and keep distinct clusters apart."""

from __future__ import annotations

import re

from services.watcher.lease import lease_name

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def test_plain_cluster_names_are_kept() -> None:
    assert lease_name("my-cluster") == "albus-watcher-my-cluster"


def test_other_cluster_names_become_valid_and_stay_distinct() -> None:
    names = {lease_name(c) for c in ("Blue_1", "blue-1", "blue_1", "BLUE-1")}
    assert len(names) == 4
    assert all(DNS_SUBDOMAIN.match(n) and len(n) <= 253 for n in names)
