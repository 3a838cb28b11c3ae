"""The compiled kernels: the logistic family once, in C, for the CPU and the GPU.

``family.h`` holds the formulas (scalar in, scalar out, with their own ``exp`` and
``log`` built from IEEE operations, so every device gives the same bits);
``_ufuncs.c`` wraps them as NumPy ufuncs with per-CPU loops (see :mod:`xpit.ufuncs`).
"""
