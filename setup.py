"""Build the compiled NumPy ufuncs, ``xpit.kernels._ufuncs``; all metadata is in pyproject.toml.

The flags keep every CPU variant bit-identical: ``-ffp-contract=off`` (family.h writes each
multiply-add as ``fma()``, nothing else may be fused), no ``-ffast-math``;
``-fno-trapping-math`` and ``-fno-math-errno`` change no result and let gcc vectorise the
branch-free selects; ``-fopenmp-simd`` honours ``#pragma omp simd`` without linking OpenMP.
"""

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

UNIX_FLAGS = [
    "-O3",
    "-std=c99",
    "-ffp-contract=off",
    "-fno-trapping-math",
    "-fno-math-errno",
    "-fopenmp-simd",
]
MSVC_FLAGS = ["/O2", "/fp:precise"]


class BuildExt(build_ext):
    """Pick the flags by compiler type: gcc-style flags for gcc and clang, MSVC's otherwise."""

    def build_extensions(self) -> None:
        msvc = self.compiler.compiler_type == "msvc"
        for ext in self.extensions:
            ext.extra_compile_args = MSVC_FLAGS if msvc else UNIX_FLAGS
            ext.libraries = [] if msvc else ["m", "pthread"]  # fma(), fenv; the thread pool
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "xpit.kernels._ufuncs",
            sources=["src/xpit/kernels/_ufuncs.c"],
            depends=["src/xpit/kernels/family.h", "src/xpit/kernels/_ufuncs_loops.h"],
            include_dirs=[np.get_include()],
            # Without a C compiler the install still succeeds: xpit then computes NumPy
            # arrays with the array-API reference and says so once (and in `xpit info`).
            optional=True,
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
