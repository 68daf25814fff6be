"""The multi-host test's wire agent without a network: IPv4 reassembly, RTPS DATA parsing, in-order delivery."""
from __future__ import annotations

import socket
import struct

from netns_agents import Copy, Reassembler, delivery_times, parse_rtps_copies

PREFIX = bytes(range(1, 13))
WRITER = bytes([0, 0, 0x14, 0x03])


def _data(seq: int, stamp_ns: int, body: int, inline_qos: bool = False) -> bytes:
    """An RTPS DATA submessage (little-endian) of a message whose CDR starts with header.stamp."""
    payload = b'\x00\x01\x00\x00' + struct.pack('<iI', *divmod(stamp_ns, 1_000_000_000)) + bytes(body)
    qos = struct.pack('<HH', 0x70, 4) + b'abcd' + struct.pack('<HH', 1, 0) if inline_qos else b''
    content = (struct.pack('<HH', 0, 16) + bytes(4) + WRITER + struct.pack('<iI', seq >> 32, seq & 0xFFFFFFFF)
               + qos + payload)
    flags = 0x01 | 0x04 | (0x02 if inline_qos else 0)
    return struct.pack('<BBH', 0x15, flags, len(content)) + content


def _datagram(*submessages: bytes, dport: int = 7411) -> bytes:
    rtps = b'RTPS\x02\x03\x01\x0f' + PREFIX
    rtps += struct.pack('<BBH', 0x09, 0x01, 8) + bytes(8)          # INFO_TS first, as Fast DDS sends it
    rtps += b''.join(submessages)
    return struct.pack('!HHHH', 40000, dport, 8 + len(rtps), 0) + rtps


def _fragments(datagram: bytes, ident: int, src: str, mtu_payload: int = 1480) -> list[bytes]:
    packets = []
    for off in range(0, len(datagram), mtu_payload):
        piece = datagram[off:off + mtu_payload]
        more = off + mtu_payload < len(datagram)
        header = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(piece), ident, (0x2000 if more else 0) | off // 8,
                             64, 17, 0, socket.inet_aton(src), socket.inet_aton('10.123.0.13'))
        packets.append(header + piece)
    return packets


def test_a_fragmented_datagram_of_two_messages_gives_both_stamps_once_complete():
    datagram = _datagram(_data(7, 2_016_431_780, 3000), _data(8, 2_117_000_001, 3000, inline_qos=True))
    packets = _fragments(datagram, ident=42, src='10.123.0.12')
    assert len(packets) == 5
    reassembler = Reassembler()
    # the last fragment first: nothing until every piece is there
    assert [reassembler.feed(p) for p in packets[::-1][:-1]] == [None] * 4
    src, whole = reassembler.feed(packets[0])
    assert (src, whole) == ('10.123.0.12', datagram)
    copies = parse_rtps_copies(src, whole, 12.5)
    writer = PREFIX.hex() + WRITER.hex()
    assert copies == [Copy(12.5, '10.123.0.12', 7411, writer, 7, 2_016_431_780, len(datagram)),
                      Copy(12.5, '10.123.0.12', 7411, writer, 8, 2_117_000_001, len(datagram))]


def test_an_unfragmented_datagram_and_other_traffic():
    datagram = _datagram(_data(1, 5_000_000_000, 100), dport=7413)
    (packet,) = _fragments(datagram, ident=1, src='10.123.0.11')
    src, whole = Reassembler().feed(packet)
    assert [(c.dport, c.seq, c.stamp_ns) for c in parse_rtps_copies(src, whole, 1.0)] == [(7413, 1, 5_000_000_000)]
    assert parse_rtps_copies(src, struct.pack('!HHHH', 1, 2, 12, 0) + b'abcd', 1.0) == []     # not RTPS
    tcp = bytearray(packet)
    tcp[9] = 6
    assert Reassembler().feed(bytes(tcp)) is None


def test_delivery_waits_for_a_resent_earlier_message():
    """Seq 2 lost and resent 0.5 s later: 3 and 4 arrived on time but are delivered with it; 5 on time."""
    def copy(seq: int, wall_s: float) -> Copy:
        return Copy(wall_s, '10.123.0.11', 7411, 'w', seq, seq * 100_000_000, 30000)

    copies = [copy(1, 0.16), copy(3, 0.36), copy(4, 0.46), copy(2, 0.76), copy(2, 0.80), copy(5, 0.86)]
    assert delivery_times(copies) == {100_000_000: 0.16, 200_000_000: 0.76, 300_000_000: 0.76,
                                      400_000_000: 0.76, 500_000_000: 0.86}
