# Types of the compiled extension (_ufuncs.c), which type checkers cannot read.
# One ufunc per kernel of family.h; the names and arities are those of xpit_specs there.

import numpy as np

cpu_path: str
_threads: bool  # whether _contiguous splits its chunks over threads of its own here

sigmoid: np.ufunc
sigmoid_grad: np.ufunc
log_sigmoid: np.ufunc
softplus: np.ufunc
logit: np.ufunc
log1mexp: np.ufunc
logexpm1: np.ufunc
logitexp: np.ufunc
sigmoid_backward: np.ufunc
bce_with_logits: np.ufunc
logdiffexp: np.ufunc
sigmoid_vjp: np.ufunc
log_sigmoid_vjp: np.ufunc
softplus_vjp: np.ufunc
logit_vjp: np.ufunc
log1mexp_vjp: np.ufunc
logitexp_vjp: np.ufunc
bce_with_logits_grad: np.ufunc
bce_with_logits_pos: np.ufunc
bce_with_logits_pos_grad: np.ufunc
sigmoid_with_grad: np.ufunc  # two results: (sigmoid(x), sigmoid_grad(x))

def _contiguous(name: str, typecode: str, n: int, chunk: int, threads: int, scalars: int, /,
                *addresses: int) -> None: ...

def _available_paths() -> tuple[str, ...]: ...
def _get_path() -> str: ...
def _set_path(name: str, /) -> str: ...
