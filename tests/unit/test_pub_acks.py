"""JetStream publishes acknowledged on the bus's own reply inbox, against a real nats-server."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.api import Header
from nats.js.errors import BadRequestError, NoStreamResponseError

from albus.broker import NatsServer
from services.common import subjects
from services.common.bus import Bus
from services.common.contracts import KubeObject, encode


def _svc(cluster: str, name: str) -> KubeObject:
    return KubeObject(cluster=cluster, kind="Service", namespace="default", name=name, obj={"metadata": {}})


async def test_many_publishes_in_flight_each_get_their_own_ack(nats_server: NatsServer) -> None:
    bus = await Bus.connect(nats_server.url, "pub-acks")
    try:
        await bus.ensure_streams()
        cluster = "pubacks"
        subs = [subjects.k8s_object(cluster, "Service", "default", f"s{i}") for i in range(50)]
        seqs = await asyncio.gather(*(bus.publish(s, _svc(cluster, s)) for s in subs))
        assert len(set(seqs)) == 50  # one stream sequence per message: no ack handed to another publish
        info = await bus.js.get_last_msg(subjects.STREAM_K8S, subs[7])
        assert info.seq == seqs[7] and info.data == encode(_svc(cluster, subs[7]))
        # A TTL travels as the stream's per-message TTL header.
        seq = await bus.publish(subs[0], _svc(cluster, "gone"), ttl=60.0)
        last = await bus.js.get_last_msg(subjects.STREAM_K8S, subs[0])
        assert last.seq == seq and (last.headers or {}).get(Header.MSG_TTL) == "60"
    finally:
        await bus.close()


async def test_no_stream_and_a_refused_message_are_the_clients_errors(nats_server: NatsServer) -> None:
    bus = await Bus.connect(nats_server.url, "pub-acks-errors")
    try:
        await bus.ensure_streams()
        with pytest.raises(NoStreamResponseError):
            await bus.acks.publish("nostream.anything", b"x")
        # The stream's own error (a TTL it cannot parse) comes back as the API error.
        with pytest.raises(BadRequestError):
            await bus.acks.publish(subjects.k8s_object("pubacks", "Service", "default", "x"), b"x",
                                   headers={Header.MSG_TTL: "bogus"})
    finally:
        await bus.close()
