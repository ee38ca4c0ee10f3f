"""Join a multicast group, count RTP packets and the TTL they arrive with; print JSON.

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


def main() -> None:
    group, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    ifaddr = sys.argv[4] if len(sys.argv) > 4 else "0.0.0.0"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((group, port))
    mreq = struct.pack("=4s4s", socket.inet_aton(group), socket.inet_aton(ifaddr))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    print(json.dumps({"ready": True}), flush=True)
    packets, ttls, ssrcs, markers, sources = 0, set(), set(), 0, set()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            continue
        data, anc, _, source = sock.recvmsg(65536, socket.CMSG_SPACE(4))
        packets += 1
        sources.add(source[0])
        for level, kind, value in anc:
            if level == socket.IPPROTO_IP and kind == socket.IP_TTL:
                ttls.add(int.from_bytes(value[:4], sys.byteorder))
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
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
