"""Track: one encoded stream of a channel, fanned out to its readers."""

from __future__ import annotations

import logging
from typing import Protocol

from ..log import Aggregated
from .unit import Unit

log = logging.getLogger(__name__)


class Reader(Protocol):
    """Anything that takes the Units of a track: an output's fan-out."""

    def on_unit(self, unit: Unit) -> None:
        """Take one Unit; must not block and must not keep the track waiting."""


class Track:
    """The Units of one codec of one channel, and who reads them."""

    def __init__(self, channel: str, codec: str) -> None:
        self.channel = channel
        self.codec = codec
        self.last: Unit | None = None
        self._readers: list[Reader] = []
        self._errors = Aggregated(log, f"{channel}/{codec}: a reader failed")

    @property
    def readers(self) -> tuple[Reader, ...]:
        """The readers now attached."""
        return tuple(self._readers)

    def add_reader(self, reader: Reader) -> None:
        """Attach a reader; it gets every Unit published from now on."""
        if reader not in self._readers:
            self._readers.append(reader)

    def remove_reader(self, reader: Reader) -> None:
        """Detach a reader; harmless if it is not attached."""
        if reader in self._readers:
            self._readers.remove(reader)

    def publish(self, unit: Unit) -> None:
        """Hand a Unit to every reader; one failing reader never stops the others."""
        self.last = unit
        for reader in tuple(self._readers):
            try:
                reader.on_unit(unit)
            except Exception as e:  # a bug in one output must not take down the channel
                self._errors.add(f"{type(e).__name__}: {e}", exc=e)
