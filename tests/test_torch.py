"""PyTorch tensors: the custom operators' values, gradients and second derivatives.

Gradients are checked twice: ``torch.autograd.gradcheck``/``gradgradcheck`` (finite
differences, float64) where finite differences are meaningful, and against exact
derivatives from mpmath (50 digits) at every point, including the tails where a
finite difference says nothing (its absolute tolerance swallows a 1e-304 gradient)
and logit near 0 and 1, where a step of 1e-6 leaves [0, 1].
"""

import math

import mpmath
import numpy as np
import pytest

import xpit
from xpit._mpreference import MP_DERIVATIVES, derivative_points

torch = pytest.importorskip("torch")

mpmath.mp.dps = 50

POINTS = derivative_points("sigmoid")


# f', f'' exactly, for each one-input function.
EXACT = MP_DERIVATIVES
UNARY = list(EXACT)
LOG_SPACE = ("log1mexp", "logexpm1", "logitexp")  # of x <= 0 (logexpm1: of y >= 0)


def _points(name):
    return derivative_points(name)


def _domain(name, x):
    """Values of the real line ``x`` (a tensor) moved into the domain of ``name``."""
    if name == "logit":
        return torch.sigmoid(x)
    if name in LOG_SPACE:
        return x.abs() if name == "logexpm1" else -x.abs()
    return x


def _f64(values, requires_grad=True):
    return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)


def _ulps(actual, exact):
    """|actual - exact| in units of the float64 spacing at exact (exact an mpmath number)."""
    if exact == 0:
        return 0.0 if actual == 0 else math.inf
    spacing = math.ulp(float(exact)) if abs(exact) >= 2.2250738585072014e-308 else 5e-324
    return float(abs(mpmath.mpf(actual) - exact) / spacing)


@pytest.mark.parametrize("name", UNARY)
def test_gradcheck(name):
    f = getattr(xpit, name)
    if name in LOG_SPACE:  # one point at a time, with a step inside the domain
        for v in _points(name):
            x, eps = _f64([v]), min(1e-6, abs(v) / 1e3)
            assert torch.autograd.gradcheck(f, (x,), eps=eps), v
            # The second derivative, -e^-x / expm1(-x)^2 ~ -1 / x^2, overflows at -1e-300
            # (checked as -inf against mpmath below), and a step of 1e-303 in the incoming
            # gradient would be lost: gradgradcheck where finite differences can see it.
            if abs(v) >= 1e-10:
                assert torch.autograd.gradgradcheck(f, (x,), eps=eps), v
        return
    moderate = [0.25, 0.5, 0.75] if name == "logit" else POINTS
    x = _f64(moderate)
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("name", UNARY)
def test_derivatives_match_mpmath(name):
    """First and second derivatives at every point, to a few ULP of the exact values."""
    f = getattr(xpit, name)
    d1, d2 = EXACT[name]
    points = _points(name)
    x = _f64(points)
    (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    for xi, gi, hi in zip(points, g.tolist(), h.tolist(), strict=True):
        exact1, exact2 = d1(mpmath.mpf(xi)), d2(mpmath.mpf(xi))
        if abs(exact1) < 1e300:  # logit'(1e-300) = 1e300: representable, still checked
            assert _ulps(gi, exact1) <= 4, (name, xi, gi, exact1)
        if abs(exact2) > 1e308:  # beyond float64: must overflow to inf of the right sign
            assert math.isinf(hi) and (hi > 0) == (exact2 > 0), (name, xi, hi)
        else:
            assert _ulps(hi, exact2) <= 8, (name, xi, hi, exact2)


def test_exact_gradients_from_the_issue():
    x = _f64([-800.0, -40.0, 0.0, 40.0])
    xpit.sigmoid(x).sum().backward()
    assert x.grad[2].item() == 0.25
    assert torch.equal(x.grad, xpit.sigmoid_grad(x.detach()))
    for name in ("log_sigmoid", "softplus"):
        for dtype in (torch.float32, torch.float64):
            z = torch.zeros(3, dtype=dtype, requires_grad=True)
            getattr(xpit, name)(z).sum().backward()
            assert z.grad.dtype == dtype and (z.grad == 0.5).all(), (name, dtype, z.grad)
    z = torch.tensor(0.0, requires_grad=True)
    xpit.softplus(-z).backward()  # d/dz softplus(-z) = -sigmoid(-z): the sign is kept
    assert z.grad.item() == -0.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sigmoid_backward_is_sigmoid_grad_bit_for_bit(dtype):
    x = torch.cat([torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 40,
                   torch.tensor([0.0, -0.0, 1e-30, -88.0, 89.0, -700.0, 710.0])]).to(dtype)
    x.requires_grad_(True)
    xpit.sigmoid(x).sum().backward()
    assert torch.equal(x.grad, xpit.sigmoid_grad(x.detach()))


def test_sigmoid_backward_gradients():
    s, g = _f64([0.1, 0.5, 0.9, 1e-300]), _f64([1.0, -2.0, 0.5, 3.0])
    assert torch.autograd.gradcheck(xpit.sigmoid_backward, (s, g))
    assert torch.autograd.gradgradcheck(xpit.sigmoid_backward, (s, g))
    expected = g.detach() * s.detach() * (1 - s.detach())
    torch.testing.assert_close(xpit.sigmoid_backward(s, g), expected, rtol=1e-15, atol=0)
    torch.testing.assert_close(xpit.sigmoid_backward(s.detach()), s.detach() * (1 - s.detach()),
                               rtol=1e-15, atol=0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_matches_torch_and_its_gradients(reduction):
    gen = torch.Generator().manual_seed(1)
    z = (torch.randn(50, generator=gen, dtype=torch.float64) * 10).requires_grad_(True)
    t = torch.rand(50, generator=gen, dtype=torch.float64).requires_grad_(True)
    loss = xpit.binary_cross_entropy_with_logits(z, t, reduction=reduction)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction=reduction)
    torch.testing.assert_close(loss, ref, rtol=1e-13, atol=0)
    f = lambda a, b: xpit.binary_cross_entropy_with_logits(a, b, reduction=reduction)  # noqa: E731
    assert torch.autograd.gradcheck(f, (z, t))
    assert torch.autograd.gradgradcheck(f, (z, t))
    gz, gt = torch.autograd.grad(loss.sum(), (z, t))
    rz, rt = torch.autograd.grad(ref.sum(), (z, t))
    torch.testing.assert_close(gz, rz, rtol=1e-13, atol=1e-300)
    torch.testing.assert_close(gt, rt, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weighted_bce_matches_torch_and_its_gradients(reduction):
    """weight (one per sample) and pos_weight (one per class) as PyTorch's: the loss and its
    gradients for the logits and targets agree; gradcheck/gradgradcheck in all four inputs
    (PyTorch's own refuses a gradient for its weights)."""
    gen = torch.Generator().manual_seed(5)
    z = (torch.randn(6, 3, generator=gen, dtype=torch.float64) * 8).requires_grad_(True)
    t = torch.rand(6, 3, generator=gen, dtype=torch.float64).requires_grad_(True)
    w = torch.rand(6, 1, generator=gen, dtype=torch.float64) + 0.5
    p = torch.tensor([0.5, 1.0, 7.0], dtype=torch.float64)
    loss = xpit.binary_cross_entropy_with_logits(z, t, weight=w, pos_weight=p,
                                                 reduction=reduction)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(z, t, weight=w, pos_weight=p,
                                                               reduction=reduction)
    torch.testing.assert_close(loss, ref, rtol=1e-13, atol=0)
    for mine, theirs in zip(torch.autograd.grad(loss.sum(), (z, t)),
                            torch.autograd.grad(ref.sum(), (z, t)), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-15)

    def f(*args):
        return xpit.binary_cross_entropy_with_logits(*args[:2], weight=args[2],
                                                     pos_weight=args[3], reduction=reduction)

    inputs = (z, t, w.requires_grad_(True), p.clone().requires_grad_(True))
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


def test_bce_gradient_keeps_its_relative_accuracy_in_the_tails():
    """d/dz = sigmoid(z) - t computed as (1 - t) sigmoid(z) - w t sigmoid(-z): at z = 20 and 40
    with t = 1, float32, PyTorch's gradient is 0; xpit's is -w sigmoid(-z) to 1 ULP."""
    z = torch.tensor([20.0, 40.0, -30.0], requires_grad=True)
    t = torch.tensor([1.0, 1.0, 0.0])
    for pos_weight in (None, torch.tensor(3.0)):
        z.grad = None
        xpit.binary_cross_entropy_with_logits(z, t, pos_weight=pos_weight,
                                              reduction="sum").backward()
        w = 1.0 if pos_weight is None else 3.0
        exact = [-w * float(_mp_sigmoid_neg(20)), -w * float(_mp_sigmoid_neg(40)),
                 float(_mp_sigmoid_neg(30))]
        torch.testing.assert_close(z.grad, torch.tensor(exact), rtol=2**-23, atol=0)
    z.grad = None
    torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction="sum").backward()
    assert z.grad[:2].tolist() == [0.0, 0.0]  # PyTorch's: sigmoid(z) rounds to 1


def _mp_sigmoid_neg(x):
    return 1 / (1 + mpmath.exp(mpmath.mpf(x)))


def test_weighted_bce_is_finite_where_torch_gives_nan():
    z = torch.tensor([math.inf, -math.inf, 1e300, -1e300], dtype=torch.float64,
                     requires_grad=True)
    t, p = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64), torch.tensor(3.0,
                                                                                 dtype=z.dtype)
    torch_loss = torch.nn.functional.binary_cross_entropy_with_logits(z, t, pos_weight=p,
                                                                      reduction="none")
    assert torch_loss[:2].isnan().all()  # PyTorch: inf - inf
    loss = xpit.binary_cross_entropy_with_logits(z, t, pos_weight=p, reduction="none")
    assert loss.tolist() == [0.0, 0.0, 0.0, 0.0]
    loss.sum().backward()
    assert z.grad.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_bce_integer_targets_and_extreme_logits():
    z, t = torch.tensor([-1e300, 0.0, 3.0], dtype=torch.float64), torch.tensor([0, 1, 1])
    loss = xpit.binary_cross_entropy_with_logits(z, t, reduction="none")
    assert loss.dtype == torch.float64 and loss[0].item() == 0.0
    assert loss[1].item() == math.log(2)


# Inductor itself calls a deprecated torch.jit API, which -W error would turn into a failure.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_agrees_with_eager(backend):
    def f(v):
        return xpit.log_sigmoid(xpit.sigmoid(v) * 3.0)

    compiled = torch.compile(f, fullgraph=True, backend=backend)
    v = torch.linspace(-50, 50, 101, dtype=torch.float64, requires_grad=True)
    y, yc = f(v), compiled(v)
    assert torch.equal(y, yc)
    (g,) = torch.autograd.grad(y.sum(), v)
    (gc,) = torch.autograd.grad(yc.sum(), v)
    torch.testing.assert_close(gc, g, rtol=1e-15, atol=0)


@pytest.mark.parametrize("name", UNARY)
def test_torch_func_transforms(name):
    """torch.func: grad, vmap (a rule of ours, no fallback warning) and jacrev give the
    family's derivatives, the same bits as autograd (forward mode: the test below)."""
    f = getattr(xpit, name)
    x = _f64(_points(name))
    (expected,) = torch.autograd.grad(f(x).sum(), x)
    x = x.detach()
    assert torch.equal(torch.func.vmap(torch.func.grad(f))(x), expected)
    assert torch.equal(torch.func.vmap(f)(x.reshape(-1, 1)).reshape(-1), f(x))
    assert torch.equal(torch.func.jacrev(f)(x).diagonal(), expected)
    second = torch.func.vmap(torch.func.grad(torch.func.grad(f)))(x)
    xv = _f64(_points(name))
    (g,) = torch.autograd.grad(f(xv).sum(), xv, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), xv)
    assert torch.equal(second, h)


def test_torch_func_two_inputs():
    gen = torch.Generator().manual_seed(11)
    s = torch.rand(4, 3, dtype=torch.float64, generator=gen)
    g = torch.randn(3, dtype=torch.float64, generator=gen)
    batched = torch.func.vmap(xpit.sigmoid_backward, in_dims=(0, None))(s, g)
    assert torch.equal(batched, xpit.sigmoid_backward(s, g.expand(4, 3)))
    for _ in range(20):  # sigmoid(z) - t cancels where they are close: an absolute bound
        z = torch.randn(5, dtype=torch.float64, generator=gen)
        t = torch.rand(5, dtype=torch.float64, generator=gen)
        gz = torch.func.grad(lambda v, t=t: xpit.binary_cross_entropy_with_logits(v, t))(z)
        sz = xpit.sigmoid(z)
        bound = 4 * torch.finfo(torch.float64).eps * (sz + t) / 5
        assert ((gz - (sz - t) / 5).abs() <= bound).all()


# torch.jit.trace and forward-mode AD load TorchScript decompositions, which warn.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tracers_and_dispatch_modes_see_the_operator():
    """jit.trace, make_fx and a TorchDispatchMode record xpit's operator (a bare kernel call
    would leave them an empty tensor), even where no gradient is needed."""
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.tensor([1.0, -1.0, 5.0])
    traced = torch.jit.trace(lambda v: xpit.sigmoid(v) * 2, torch.zeros(3))
    assert torch.equal(traced(x), xpit.sigmoid(x) * 2)
    graph = make_fx(lambda v: xpit.sigmoid(v) * 2)(torch.zeros(3))
    assert torch.ops.xpit.sigmoid.default in [n.target for n in graph.graph.nodes]
    assert torch.equal(graph(x), xpit.sigmoid(x) * 2)
    with FlopCounterMode(display=False):
        assert torch.equal(xpit.log_sigmoid(x), xpit.log_sigmoid(x.clone()))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", UNARY)
def test_forward_mode_ad(name):
    """Dual tensors, torch.func.jvp, jacfwd and hessian: the family's derivatives, the same
    bits as reverse mode."""
    import torch.autograd.forward_ad as fwAD

    f = getattr(xpit, name)
    x = _f64(_points(name), requires_grad=False)
    xr = x.clone().requires_grad_(True)
    (reverse,) = torch.autograd.grad(f(xr).sum(), xr)
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(f(fwAD.make_dual(x, torch.ones_like(x)))).tangent
    assert torch.equal(tangent, reverse)
    assert torch.equal(torch.func.jvp(f, (x,), (torch.ones_like(x),))[1], reverse)
    assert torch.equal(torch.func.jacfwd(f)(x).diagonal(), reverse)
    (g,) = torch.autograd.grad(f(xr).sum(), xr, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), xr)
    assert torch.equal(torch.func.hessian(lambda v: f(v).sum())(x).diagonal(), h)


def test_layouts_and_negated_views():
    """Results keep the input's layout (what the fake kernel says, so torch.compile and
    opcheck agree), and a lazily negated view is read as its values, not its memory."""
    from xpit._backends import torch as ops

    for x in (torch.randn(4, 6).t(), torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)):
        assert xpit.sigmoid(x).stride() == x.stride()
        assert torch.equal(xpit.sigmoid(x), xpit.sigmoid(x.contiguous()))
    for name in ("sigmoid", "bce_with_logits", "sigmoid_vjp", "bce_with_logits_pos"):
        n = len(ops.OPS[name]._opoverload._schema.arguments)
        args = tuple(torch.rand(4, 6, dtype=torch.float64).t().requires_grad_(True)
                     for _ in range(n))
        torch.library.opcheck(ops.OPS[name], args)
    v = torch.tensor([1 + 2j, 3 - 1j]).conj().imag  # the negative bit set, memory [2, -1]
    assert v.is_neg() and torch.equal(xpit.sigmoid(v), torch.sigmoid(v.resolve_neg()))


def test_a_parameter_is_a_plain_tensor():
    p = torch.nn.Parameter(_f64([0.0, 3.0, -40.0], requires_grad=False))
    y = xpit.sigmoid(p)
    assert type(y.grad_fn).__name__ == "Xpit_sigmoidBackward"  # the eager Function, no dispatch
    y.sum().backward()
    assert torch.equal(p.grad, xpit.sigmoid_grad(p.detach()))


def test_no_grad_and_plain_tensors():
    x = torch.linspace(-5, 5, 11)
    y = xpit.sigmoid(x)
    assert not y.requires_grad and y.dtype == torch.float32
    with torch.no_grad():
        y = xpit.softplus(x.clone().requires_grad_(True))
    assert not y.requires_grad
    assert torch.equal(y, xpit.softplus(x))


def test_non_contiguous():
    x = torch.randn(40, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 20
    for view in (x[:, ::3], x.T, x[::2, 1::2].T):
        for name in UNARY:
            v = _domain(name, view)
            y = getattr(xpit, name)(v)
            assert y.shape == v.shape
            expected = torch.from_numpy(getattr(xpit, name)(np.ascontiguousarray(v.numpy())))
            assert torch.equal(y, expected), name
    leaf = x[:, ::3].clone().requires_grad_(True)
    xpit.sigmoid(leaf.T).sum().backward()
    assert torch.equal(leaf.grad, xpit.sigmoid_grad(leaf.detach()))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", UNARY)
def test_half_precision_within_one_ulp(name, dtype):
    x = (torch.linspace(0.001, 0.999, 999) if name == "logit"
         else _domain(name, torch.linspace(-20, 20, 1001))).to(dtype)
    y = getattr(xpit, name)(x)
    assert y.dtype == dtype and y.shape == x.shape
    _assert_within_one_ulp(y, getattr(xpit, name)(x.double()))


def _assert_within_one_ulp(y, exact):
    """``y`` (a half, bfloat16 or float32 tensor) within 1 ULP of the float64 ``exact``."""
    rounded = exact.to(y.dtype).double()
    info = torch.finfo(y.dtype)
    ulp = torch.clamp(rounded.abs(), min=info.smallest_normal) * info.eps
    assert ((y.double() == rounded) | ((y.double() - rounded).abs() <= ulp)).all()


def test_other_inputs_keep_their_paths():
    assert xpit.sigmoid(torch.tensor([0, 1])).dtype == torch.get_default_dtype()  # integers
    assert xpit.sigmoid(0.0) == 0.5 and isinstance(xpit.sigmoid(np.zeros(2)), np.ndarray)
    with pytest.raises(ValueError, match="reduction"):
        xpit.binary_cross_entropy_with_logits(torch.zeros(2), torch.zeros(2), reduction="avg")


VJP = {"sigmoid_vjp": "sigmoid", "log_sigmoid_vjp": "log_sigmoid",
       "softplus_vjp": "softplus", "logit_vjp": "logit"}


@pytest.mark.parametrize("name", VJP)
def test_backward_operators(name):
    """The fused backward passes ``g f'(x)``: the gradient autograd computes, differentiable in
    both arguments (gradcheck, gradgradcheck: the third derivative of the forward)."""
    from xpit._backends import torch as ops

    op = getattr(ops, name)
    points = [0.25, 0.5, 0.75, 0.125] if name == "logit_vjp" else [0.0, 1.0, -1.0, 30.0, -3.0]
    x, g = _f64(points), _f64([1.0, -2.0, 0.5, 3.0, 1.5][: len(points)])
    assert torch.autograd.gradcheck(op, (x, g))
    assert torch.autograd.gradgradcheck(op, (x, g))
    (expected,) = torch.autograd.grad(getattr(xpit, VJP[name])(x), x, g)
    assert torch.equal(op(x.detach(), g.detach()), expected)
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        xd, gd = x.detach().to(dtype), g.detach().to(dtype)
        got = op(xd, gd)
        assert got.dtype == dtype
        _assert_within_one_ulp(got, op(xd.double(), gd.double()))


def test_large_tensors_threaded_and_ordinary():
    """A tensor of many chunks (threads, huge-page advice for the output) gives the bits of its
    NumPy view; the result is an ordinary tensor of PyTorch's allocator, and the caller's
    tensor is left as it was (still resizable)."""
    x = torch.randn(3 << 20, generator=torch.Generator().manual_seed(3)) * 30
    y = xpit.sigmoid(x)
    assert torch.equal(y, torch.from_numpy(xpit.sigmoid(x.clone().numpy())))
    xr = x.clone().requires_grad_(True)
    xpit.log_sigmoid(xr).backward(torch.ones_like(x))
    assert torch.equal(xr.grad, xpit.sigmoid(-x))
    for t in (y, x):  # Tensor.numpy() would have marked both storages as never resizable
        t.resize_(2 * t.numel())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_training_paths_give_the_bits_of_the_fused_kernels(dtype):
    """While autograd records, sigmoid's forward also writes sigmoid_grad(x) (one kernel, one
    exp) and its backward is one product: the bits of the fused ``sigmoid_vjp``, contiguous
    or not. A reduced loss is one node (``_ReducedBCE``): the bits of the elementwise loss
    then ``mean``/``sum``, forward and backward, a one-element ``pos_weight`` included."""
    from xpit.kernels import _ufuncs

    gen = torch.Generator().manual_seed(11)
    x = (torch.randn(3 << 16, generator=gen, dtype=dtype) * 30).requires_grad_(True)
    g = torch.randn(3 << 16, generator=gen, dtype=dtype)
    for leaf in (x, x.detach().reshape(3, -1).t().requires_grad_(True)):  # and strided
        y = xpit.sigmoid(leaf)
        assert type(y.grad_fn).__name__ == "Xpit_sigmoidBackward"
        grad = g.reshape(leaf.shape)
        y.backward(grad)
        xn, gn = leaf.detach().numpy(), grad.numpy()
        assert torch.equal(y.detach(), torch.from_numpy(_ufuncs.sigmoid(xn)))
        assert torch.equal(leaf.grad, torch.from_numpy(_ufuncs.sigmoid_vjp(xn, gn)))
    z = (torch.randn(1024, 1, generator=gen, dtype=dtype) * 20).requires_grad_(True)
    t = (torch.rand(1024, 1, generator=gen) < 0.3).to(dtype)
    for pos_weight in (None, torch.tensor([4.0], dtype=dtype), torch.tensor(0.5, dtype=dtype)):
        for reduction in ("mean", "sum"):
            loss = xpit.binary_cross_entropy_with_logits(z, t, pos_weight=pos_weight,
                                                         reduction=reduction)
            assert type(loss.grad_fn).__name__ == "_ReducedBCEBackward"
            (got,) = torch.autograd.grad(loss, z)
            each = xpit.binary_cross_entropy_with_logits(z, t, pos_weight=pos_weight,
                                                         reduction="none")
            two_nodes = each.mean() if reduction == "mean" else each.sum()
            (want,) = torch.autograd.grad(two_nodes, z)
            assert torch.equal(loss, two_nodes) and torch.equal(got, want)
    p = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)  # its gradient, its shape
    z64, t64 = z.detach().double().requires_grad_(True), t.double().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b, c: xpit.binary_cross_entropy_with_logits(a, b, pos_weight=c), (z64, t64, p))
    assert torch.autograd.gradgradcheck(
        lambda a, b, c: xpit.binary_cross_entropy_with_logits(a, b, pos_weight=c), (z64, t64, p))


def test_custom_ops_are_registered():
    for name in [*UNARY, "sigmoid_backward", "bce_with_logits", *VJP]:
        assert hasattr(torch.ops.xpit, name)
    x = torch.empty(3, 4, device="meta")
    assert xpit.sigmoid(x).device.type == "meta"


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_cuda_tensors_run_the_fused_kernels(dtype):
    """On a CUDA tensor the CuPy kernels run on its memory and its current stream: the bits of
    the CPU kernels (the same C source), forward and backward, and the result stays there."""
    if not torch.cuda.is_available():
        pytest.skip("CuPy sees a CUDA device but PyTorch does not (CPU build of PyTorch?)")
    gen = torch.Generator().manual_seed(4)
    cpu = torch.cat([torch.randn(100_000, generator=gen) * 30,
                     torch.tensor([0.0, -0.0, 1e-30, 88.0, -104.0, 710.0, -750.0])]).to(dtype)
    for name in UNARY:
        x = _domain(name, cpu.float()).to(dtype)
        xc = x.cuda().requires_grad_(True)
        y = getattr(xpit, name)(xc)
        assert y.device == xc.device and y.dtype == dtype
        assert torch.equal(y.cpu(), getattr(xpit, name)(x)), name
        y.backward(torch.ones_like(y))
        xh = x.clone().requires_grad_(True)
        getattr(xpit, name)(xh).backward(torch.ones_like(xh))
        assert torch.equal(xc.grad.cpu(), xh.grad), name
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):  # queued on the caller's stream, not CuPy's default
        x = cpu.cuda(non_blocking=True)
        y = xpit.sigmoid(x[::2])  # strided
    stream.synchronize()
    assert torch.equal(y.cpu(), xpit.sigmoid(cpu[::2]))


# --- logdiffexp: two inputs that broadcast -----------------------------------------------------

DIFFERENCES = [-1e-300, -1e-10, -0.5, -30.0, -700.0]  # b - a


def test_logdiffexp_gradients():
    """d/da = -1 / expm1(b - a), d/db = -1 / expm1(a - b), against mpmath; gradcheck (and
    gradgradcheck where finite differences can resolve the second derivatives)."""
    for d in DIFFERENCES:
        for a0 in (0.0, 3.0, -2.0):
            if a0 + d == a0:  # -1e-300 and -1e-10 beside 3 round back to 3: b == a
                assert abs(d) < 1e-9
                continue
            a, b = _f64([a0]), _f64([a0 + d])  # b - a: d, or d rounded to a0's spacing
            eps = min(1e-6, abs(d) / 1e3)
            assert torch.autograd.gradcheck(xpit.logdiffexp, (a, b), eps=eps), (a0, d)
            if abs(d) >= 1e-10:
                assert torch.autograd.gradgradcheck(xpit.logdiffexp, (a, b), eps=eps), (a0, d)
        a, b = _f64([0.0]), _f64([d])
        ga, gb = torch.autograd.grad(xpit.logdiffexp(a, b), (a, b))
        exact_a = -1 / mpmath.expm1(mpmath.mpf(d))
        exact_b = -1 / mpmath.expm1(-mpmath.mpf(d))
        assert _ulps(ga.item(), exact_a) <= 4 and _ulps(gb.item(), exact_b) <= 4, d


def test_logdiffexp_broadcasts_like_torch_and_matches_numpy():
    a = _f64([0.0, 1.0, 5.0, 700.0])
    b = _f64([[-1.0], [-30.0], [-float("inf")]])
    y = xpit.logdiffexp(a, b)
    assert y.shape == (3, 4) and y.dtype == torch.float64
    expected = xpit.logdiffexp(a.detach().numpy(), b.detach().numpy())
    assert torch.equal(y, torch.from_numpy(expected))
    y.sum().backward()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape
    # the two partial derivatives add up to 1 (log(e^(a+c) - e^(b+c)) = c + log(e^a - e^b))
    torch.testing.assert_close(a.grad.sum() + b.grad.sum(), torch.tensor(12.0, dtype=torch.float64))
    compiled = torch.compile(lambda u, v: xpit.logdiffexp(u, v) * 2, fullgraph=True,
                             backend="aot_eager")
    assert torch.equal(compiled(a.detach(), b.detach()), 2 * y.detach())
    assert hasattr(torch.ops.xpit, "logdiffexp")
    with pytest.raises(ValueError, match=r"xpit\.logdiffexp: 'a' has shape"):
        xpit.logdiffexp(torch.zeros(3), torch.zeros(2))


def test_log_space_derivatives_at_the_end_of_the_domain():
    """At x = +-0 (and a == b): log1mexp' = -inf, logitexp' = inf, logexpm1'(+-0) = inf, the
    signs of the limits from inside the domain; NaN outside it."""
    x = _f64([0.0, -0.0, 1.0])
    (g,) = torch.autograd.grad(xpit.log1mexp(x).sum(), x)
    assert g[:2].tolist() == [-math.inf, -math.inf] and math.isnan(g[2])
    (g,) = torch.autograd.grad(xpit.logitexp(x).sum(), x)
    assert g[:2].tolist() == [math.inf, math.inf] and math.isnan(g[2])
    y = _f64([0.0, -0.0, -1.0])
    (g,) = torch.autograd.grad(xpit.logexpm1(y).sum(), y)
    assert g[:2].tolist() == [math.inf, math.inf] and math.isnan(g[2])
    a, b = _f64([1.0]), _f64([1.0])
    ga, gb = torch.autograd.grad(xpit.logdiffexp(a, b), (a, b))
    assert (ga.item(), gb.item()) == (math.inf, -math.inf)
