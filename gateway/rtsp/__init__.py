"""RTSP 1.0: message codec, sessions, SDP, transports, server."""
