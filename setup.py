"""Build the Cython extensions in ext/ into gateway._ext."""

from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        f"gateway._ext.{source.stem}",
        [str(source)],
        extra_compile_args=["-O2"],
    )
    for source in sorted(Path("ext").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3", "embedsignature": True},
        include_path=["ext"],
    )
)
