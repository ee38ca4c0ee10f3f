"""The kernel send buffer of a viewer's TCP connection.

Linux grows a TCP socket's send buffer up to 4 MB on its own. For a viewer
that stops reading, that is seconds of video queued where the egress cannot
see it: the high-water mark would only count once the kernel is full, and a
slow viewer would watch minutes-old frames. A fixed buffer keeps a viewer's
backlog within a known size, and lets the egress drop whole frames early.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

log = logging.getLogger(__name__)


def set_send_buffer(transport: Any, size: int) -> bool:
    """Fix the send buffer of the socket under an asyncio transport (0: leave it to the kernel)."""
    if not size or transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    except OSError as e:
        log.debug("cannot set SO_SNDBUF to %d: %s", size, e)
        return False
    return True
