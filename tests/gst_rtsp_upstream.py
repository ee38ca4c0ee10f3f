"""GStreamer's RTSP server as an Axis-shaped upstream camera, for ingest tests.

Run with the system Python that has GObject introspection (Debian: python3-gi,
gir1.2-gst-rtsp-server-1.0):

    /usr/bin/python3 tests/gst_rtsp_upstream.py --port 8556 --codec h264 [--user U --password P]

Serves a live test pattern on /axis-media/media.amp (shared media: every client
gets the same packets), with Digest authentication when a user is given. Codecs:
`h264` (x264, constrained baseline), `h264-bframes` (x264, main profile with
B-frames), `jpeg` (RTP/JPEG). Prints "ready" once listening.
"""

from __future__ import annotations

import argparse

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

SOURCE = (
    "videotestsrc is-live=true pattern=ball "
    "! video/x-raw,width=352,height=288,framerate=25/1,format=I420 "
)
PIPELINES = {
    "h264": SOURCE + "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 "
    "threads=1 ! video/x-h264,profile=constrained-baseline "
    "! rtph264pay name=pay0 pt=96 config-interval=-1",
    "h264-bframes": SOURCE + "! x264enc speed-preset=ultrafast bframes=2 b-adapt=false "
    "key-int-max=25 threads=1 ! video/x-h264,profile=main "
    "! rtph264pay name=pay0 pt=96 config-interval=-1",
    "jpeg": SOURCE + "! jpegenc quality=70 ! rtpjpegpay name=pay0 pt=26",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--codec", choices=sorted(PIPELINES), default="h264")
    parser.add_argument("--user")
    parser.add_argument("--password", default="")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( {PIPELINES[args.codec]} )")
    factory.set_shared(True)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth.add_digest(args.user, args.password, token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", "media.factory.access", True)
        permissions.add_permission_for_role("viewer", "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory("/axis-media/media.amp", factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on port {args.port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
