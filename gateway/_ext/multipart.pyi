"""Incremental multipart/x-mixed-replace scanner, sans-IO (compiled from ext/multipart.pyx)."""

from typing import Final, final

__all__ = ["MAX_PADDING", "MultipartScanner", "Part", "ScanError", "boundary_from_content_type"]

MAX_PADDING: Final[int]
"""Most spaces or tabs allowed between a boundary and its line break."""

@final
class Part:
    """One complete part: headers (lower-cased names), Content-Type and body."""

    def __init__(
        self, headers: tuple[tuple[bytes, bytes], ...], content_type: bytes | None, body: bytes
    ) -> None: ...
    @property
    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """(lower-cased name, stripped value) pairs, in order."""
    @property
    def content_type(self) -> bytes | None:
        """Value of the first Content-Type header, if any."""
    @property
    def body(self) -> bytes:
        """The part's payload."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ScanError:
    """A refused part; the scanner resynchronises on the next delimiter."""

    def __init__(self, reason: str, discarded: int) -> None: ...
    @property
    def reason(self) -> str:
        """part_too_large, headers_too_large, too_many_headers, bad_header or bad_content_length."""
    @property
    def discarded(self) -> int:
        """Bytes of the refused part dropped when it was refused (best effort)."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class MultipartScanner:
    """Incremental sans-IO scanner of a multipart/x-mixed-replace byte stream."""

    def __init__(
        self,
        boundary: bytes,
        *,
        max_part_size: int = 4 << 20,
        max_header_size: int = 8192,
        max_headers: int = 32,
    ) -> None: ...
    def feed(self, data: bytes | bytearray | memoryview) -> list[Part | ScanError]:
        """Take the next chunk of the stream; return the parts completed or refused by it."""
    @property
    def boundary(self) -> bytes:
        """The normalised boundary (no leading "--")."""
    @property
    def closed(self) -> bool:
        """True once the closing delimiter was seen; later data is ignored."""
    @property
    def buffered(self) -> int:
        """Bytes currently held."""

def boundary_from_content_type(value: str | bytes) -> bytes:
    """The boundary parameter of a multipart Content-Type, without a leading "--"."""
