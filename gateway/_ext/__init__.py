"""Compiled hot paths, built from the Cython sources in ext/."""
