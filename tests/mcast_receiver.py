"""Join a multicast group, count RTP packets and the TTL and DSCP they arrive with; print JSON.

RTCP (the group's port + 1) is counted too, with its DSCP.

Run inside a test network namespace: python tests/mcast_receiver.py GROUP PORT SECONDS [IFADDR]
"""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import time

IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)  # Linux value; Python does not export it


def join(group: str, port: int, ifaddr: str) -> socket.socket:
    """A socket bound to the group's port, member of the group, reporting TTL and TOS."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((group, port))
    mreq = struct.pack("=4s4s", socket.inet_aton(group), socket.inet_aton(ifaddr))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    return sock


def main() -> None:
    group, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    ifaddr = sys.argv[4] if len(sys.argv) > 4 else "0.0.0.0"
    sock = join(group, port, ifaddr)
    rtcp = join(group, port + 1, ifaddr)
    print(json.dumps({"ready": True}), flush=True)
    packets, ttls, ssrcs, markers, sources = 0, set(), set(), 0, set()
    dscps: set[int] = set()
    rtcp_packets, rtcp_dscps = 0, set()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        for ready in select.select([sock, rtcp], [], [], left)[0]:
            data, anc, _, source = ready.recvmsg(65536, 256)
            tos = ttl = None
            for level, kind, value in anc:
                if level == socket.IPPROTO_IP and kind == socket.IP_TTL:
                    ttl = int.from_bytes(value[:4], sys.byteorder)
                elif level == socket.IPPROTO_IP and kind == socket.IP_TOS:
                    tos = value[0]
            if ready is rtcp:
                rtcp_packets += 1
                if tos is not None:
                    rtcp_dscps.add(tos >> 2)
                continue
            packets += 1
            sources.add(source[0])
            if ttl is not None:
                ttls.add(ttl)
            if tos is not None:
                dscps.add(tos >> 2)
            if len(data) >= 12:
                ssrcs.add(struct.unpack("!I", data[8:12])[0])
                markers += data[1] >> 7
    print(
        json.dumps(
            {
                "packets": packets,
                "ttls": sorted(ttls),
                "ssrcs": len(ssrcs),
                "frames": markers,
                "sources": sorted(sources),
                "dscps": sorted(dscps),
                "rtcp_packets": rtcp_packets,
                "rtcp_dscps": sorted(rtcp_dscps),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
