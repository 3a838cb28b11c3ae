"""The built-in backend records: ``numpy`` (the host) and ``cupy``. Each backend's own code
lives in its own module; :mod:`xpit._backends.cupy` is the only module that imports CuPy."""
