"""VAPIX parameter helpers."""

from __future__ import annotations

import pytest

from gateway import vapix


def test_camera_and_fps() -> None:
    assert vapix.camera_param(None, 4) == 1
    assert vapix.camera_param("4", 4) == 4
    for bad in ("0", "5", "x", "-1"):
        with pytest.raises(vapix.VapixError):
            vapix.camera_param(bad, 4)
    assert vapix.fps_param("0") is None
    assert vapix.fps_param("12.5") == 12.5
    for bad in ("nan", "-1", "x", "1000"):
        with pytest.raises(vapix.VapixError):
            vapix.fps_param(bad)


def test_resolutions() -> None:
    assert vapix.resolution_param("4CIF") == (704, 576)
    assert vapix.resolution_param("cif", "ntsc") == (352, 240)
    assert vapix.resolution_param("704x480") == (704, 480)
    with pytest.raises(vapix.VapixError):
        vapix.resolution_param("big")


def test_param_list() -> None:
    params = {"root.Brand.ProdNbr": "2400", "root.ImageSource.NbrOfSources": "4"}
    assert vapix.param_list(params, "Brand") == "root.Brand.ProdNbr=2400\n"
    assert vapix.param_list(params, "root.ImageSource") == "root.ImageSource.NbrOfSources=4\n"
    assert "Error -1" in vapix.param_list(params, "Nope")
    assert vapix.param_list(params, None).count("\n") == 2
