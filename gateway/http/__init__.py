"""HTTP outputs: MJPEG, snapshots, VAPIX-compatible routes, API, metrics."""
