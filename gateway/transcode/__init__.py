"""MJPEG to H.264: one shared, on-demand encoder per channel (PyAV, off the event loop).

settings.py holds the configuration, encoder.py the PyAV pipeline, worker.py
the thread that runs it for a channel. Nothing is imported here, so that reading
the configuration does not load PyAV.
"""
