"""Security: HTTP/RTSP authentication schemes and their parsers."""
