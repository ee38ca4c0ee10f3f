# coaxgate: `make demo` runs the gateway on its built-in Axis 2400 emulator,
# `make test` runs the whole suite. Both set up .venv from nothing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
PIP    := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test build lint peers bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) setuptools Cython wheel

# constraints.txt pins the build and test tools, so a new release cannot change a run.
$(STAMP): $(PY) pyproject.toml setup.py constraints.txt
	$(PIP) setuptools Cython wheel
	$(PIP) --no-build-isolation -e '.[test]'
	touch $@

# Rebuild the Cython extensions that changed since the last install.
build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

demo: build
	$(VENV)/bin/coaxgate demo

test: build
	$(PY) -m pytest $(PYTEST_ARGS)

lint: build
	$(VENV)/bin/ruff check gateway tests bench
	$(VENV)/bin/mypy

bench: build
	$(PY) -m pytest bench --benchmark-enable -p no:cacheprovider
	$(PY) bench/fanout_mjpeg.py --seconds 20

# System peers the interop tests drive (Debian/Ubuntu); .ci/run calls this.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
peers:
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	    ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gir1.2-gst-rtsp-server-1.0 python3-gi \
	    chromium iproute2 tshark curl glib-networking

clean:
	rm -rf $(VENV) build *.egg-info ext/*.c gateway/_ext/*.so
