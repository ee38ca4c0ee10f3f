"""WebRTC: WHEP sessions fed from the shared H.264 encoder."""
