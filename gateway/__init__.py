"""coaxgate: a streaming media gateway for analog-era video servers."""

__version__ = "0.1.0"
