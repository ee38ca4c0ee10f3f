"""Bits of the Axis VAPIX HTTP API shared by the emulator and the gateway."""

from __future__ import annotations

from collections.abc import Mapping

# Resolution names that VAPIX accepts besides WxH, by video standard.
NAMED_RESOLUTIONS = {
    "pal": {"4cif": (704, 576), "2cif": (704, 288), "cif": (352, 288), "qcif": (176, 144)},
    "ntsc": {"4cif": (704, 480), "2cif": (704, 240), "cif": (352, 240), "qcif": (176, 120)},
}


class VapixError(ValueError):
    """A request parameter VAPIX would refuse; the message is what the client is told."""


def camera_param(value: str | None, count: int) -> int:
    """The 1-based `camera=` parameter (default 1), checked against `count` inputs."""
    if value is None or value == "":
        return 1
    # isdigit() alone lets "²" through to int(); a long number is not a camera either.
    if not _number(value) or not 1 <= int(value) <= count:
        raise VapixError(f"camera must be 1..{count}, got {value!r}")
    return int(value)


def fps_param(value: str | None, maximum: float = 100.0) -> float | None:
    """The `fps=` parameter: None (or 0) means the source rate."""
    if value is None or value == "":
        return None
    try:
        fps = float(value)
    except ValueError:
        raise VapixError(f"fps must be a number, got {value!r}") from None
    if fps != fps or fps < 0 or fps > maximum:
        raise VapixError(f"fps must be between 0 and {maximum:g}, got {value!r}")
    return fps or None


def resolution_param(value: str, standard: str = "pal") -> tuple[int, int]:
    """The `resolution=` parameter: WxH or a named size (4CIF, CIF, QCIF...)."""
    named = NAMED_RESOLUTIONS.get(standard, {}).get(value.lower())
    if named:
        return named
    w, sep, h = value.lower().partition("x")
    if not sep or not _number(w) or not _number(h):
        raise VapixError(f"resolution must look like 704x576, got {value!r}")
    return int(w), int(h)


def _number(text: str, digits: int = 6) -> bool:
    """Whether `text` is a decimal number int() reads, of at most `digits` ASCII digits."""
    return 0 < len(text) <= digits and text.isascii() and text.isdigit()


def param_list(params: Mapping[str, str], groups: str | None) -> str:
    """The text body of `param.cgi?action=list[&group=...]`.

    Groups are comma-separated prefixes with or without the leading `root.`;
    an unknown group yields the error line real devices print.
    """
    lines: list[str] = []
    wanted = [g.strip() for g in groups.split(",")] if groups else [""]
    for group in wanted:
        if not group:
            lines.extend(f"{k}={v}" for k, v in params.items())
            continue
        prefix = group if group.startswith("root.") or group == "root" else f"root.{group}"
        found = [f"{k}={v}" for k, v in params.items() if k == prefix or k.startswith(prefix + ".")]
        lines.extend(found or [f"# Error: Error -1 getting param in group '{group}'"])
    return "\n".join(lines) + "\n"
