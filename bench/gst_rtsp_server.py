"""GStreamer's RTSP server serving an MJPEG-over-HTTP camera as RTP/JPEG: the peer in benchmarks.

Run with the system Python that has GObject introspection (Debian: python3-gi,
gir1.2-gst-rtsp-server-1.0):

    /usr/bin/python3 bench/gst_rtsp_server.py --port 8555 --source http://.../video.cgi

One shared media per mount (`shared=true`): every client is fed from one
pipeline, `souphttpsrc ! multipartdemux ! jpegparse ! rtpjpegpay`
(jpegparse gives rtpjpegpay the picture size it needs in its caps).
"""

from __future__ import annotations

import argparse

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--mount", default="/lobby")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( souphttpsrc location="{args.source}" is-live=true do-timestamp=true '
        "! multipartdemux ! jpegparse ! rtpjpegpay name=pay0 pt=26 mtu=1412 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.mount, factory)
    server.attach(None)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
