"""``xpit bench``: the rows, the ratios, the table, JSON, the plot and the CLI."""

from __future__ import annotations

import importlib.util
import json

import pytest

from xpit import bench
from xpit.cli import main


@pytest.fixture(scope="module")
def rows():
    return bench.run_timings(["numpy"], ["sigmoid", "log_sigmoid"], ["float32"], [2000],
                             repeats=2, progress=False)


def test_every_implementation_is_timed_with_ratios(rows):
    sigmoid = {r.impl: r for r in rows if r.function == "sigmoid"}
    expected = {"xpit", "xpit batch(out=)", "numpy textbook", "numpy clipped",
                "scipy expit", "copy (np.copyto)"}
    if importlib.util.find_spec("torch"):
        expected.add("torch.sigmoid(out=)")
        assert sigmoid["torch.sigmoid(out=)"].vs_torch == 1.0
    assert expected <= set(sigmoid)
    copy = sigmoid["copy (np.copyto)"]
    assert copy.vs_copy == 1.0 and sigmoid["np.exp(out=) 1 thread"].vs_exp == 1.0
    assert sigmoid["xpit"].vs_exp == pytest.approx(
        sigmoid["xpit"].seconds / sigmoid["np.exp(out=) 1 thread"].seconds)
    peers = [r for r in sigmoid.values() if r.kind == "peer"]
    assert min(r.vs_best_peer for r in peers) == 1.0
    for r in sigmoid.values():
        assert r.seconds > 0 and r.size == 2000
        assert r.ns_per_element == pytest.approx(r.seconds / 2000 * 1e9)
        assert r.gb_per_s == pytest.approx(2 * 2000 * 4 / r.seconds / 1e9)
        assert r.vs_copy == pytest.approx(r.seconds / copy.seconds)


def test_pytorch_tensor_rows_forward_and_backward():
    pytest.importorskip("torch")
    rows = bench.run_timings(["torch"], ["sigmoid", "sigmoid_grad"], ["float32"], [2000],
                             repeats=1, progress=False)
    cases = {(r.function, r.impl): r for r in rows}
    assert set(cases) == {
        ("sigmoid", "xpit"), ("sigmoid", "xpit on t.numpy()"), ("sigmoid", "torch.sigmoid"),
        ("sigmoid", "copy (Tensor.copy_)"), ("sigmoid fwd+bwd", "xpit"),
        ("sigmoid fwd+bwd", "torch.sigmoid"), ("sigmoid_grad", "xpit"),
        ("sigmoid_grad", "xpit on t.numpy()"), ("sigmoid_grad", "torch s*(1-s)"),
        ("sigmoid_grad", "copy (Tensor.copy_)")}
    assert "sigmoid_grad fwd+bwd" not in {r.function for r in rows}  # backward of 3 functions
    assert cases["sigmoid fwd+bwd", "torch.sigmoid"].vs_torch == 1.0
    both = cases["sigmoid fwd+bwd", "xpit"]  # five passes over memory: x, y; x, g, x.grad
    assert both.gb_per_s == pytest.approx(5 * 2000 * 4 / both.seconds / 1e9)
    assert cases["sigmoid", "xpit"].vs_torch == pytest.approx(
        cases["sigmoid", "xpit"].seconds / cases["sigmoid", "torch.sigmoid"].seconds)
    assert all(r.backend == "torch" and r.seconds > 0 for r in rows)
    assert "sigmoid fwd+bwd" in bench.format_table(rows)


def test_table_json_and_plot(rows, tmp_path):
    table = bench.format_table(rows)
    assert "vs copy" in table and "vs torch" in table and "scipy log_expit" in table
    bench.write_json(str(tmp_path / "b.json"), rows, None)
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["machine"]["cores"] >= 1 and "numpy" in data["machine"]["versions"]
    assert len(data["timings"]) == len(rows)
    bench.plot(rows, str(tmp_path / "b.png"))
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accuracy_table_shows_xpit_within_contract_and_the_textbook_failing():
    acc = {(r["impl"], r["dtype"]): r for r in bench.run_accuracy(["sigmoid"], n=2000)}
    assert acc["xpit", "float64"]["max_ulp"] <= 2 and acc["xpit", "float32"]["max_ulp"] <= 3
    assert acc["numpy textbook", "float64"]["max_ulp"] > 1e6  # it flushes the left tail
    assert "max ULP" in bench.format_accuracy(list(acc.values()))


def test_sizes_are_capped_by_free_memory():
    assert bench.usable_sizes([10, 10**15], "float64", "numpy") == [10]


def test_cli_bench(tmp_path, capsys):
    code = main(["bench", "--sizes", "1e3", "--repeats", "1", "--functions", "sigmoid",
                 "--dtypes", "float64", "--json", str(tmp_path / "b.json"), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "scipy expit" in out and "copy (np.copyto)" in out
    assert json.loads((tmp_path / "b.json").read_text())["timings"]


def test_cli_bench_cupy_without_gpu_says_why(capsys):
    from xpit import _registry

    if _registry.probe("cupy")[0]:
        pytest.skip("a CUDA device is usable")
    assert main(["bench", "--backend", "cupy"]) == 1
    assert capsys.readouterr().err.startswith("xpit bench: error: CuPy is not usable here: ")


def test_cli_bench_rejects_bad_sizes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--sizes", "ten"])
    assert exit_info.value.code == 2
    assert "expected sizes like 1e3,1e7" in capsys.readouterr().err


_BENCH = ("from xpit.cli import main; raise SystemExit(main(['bench', '--sizes', '1e3', "
          "'--repeats', '1', '--functions', 'sigmoid', '--dtypes', 'float64', "
          "'--no-progress', '--json', {json!r}]))")


def _bench_without_torch(tmp_path, setup: str, env: dict | None = None):
    import os
    import subprocess
    import sys

    code = setup + _BENCH.format(json=str(tmp_path / "b.json"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads((tmp_path / "b.json").read_text())


def test_bench_runs_without_pytorch(tmp_path):
    """With PyTorch absent, its rows say so and how to add it; every other row is timed."""
    out, data = _bench_without_torch(tmp_path, "import sys; sys.modules['torch'] = None; ")
    assert "torch.sigmoid(out=)      not installed (see below)" in out
    assert ("not measured: torch: not installed; add it with: pip install torch (a CPU-only "
            "build, far smaller: pip install torch --index-url "
            "https://download.pytorch.org/whl/cpu)") in out
    assert {"xpit", "scipy expit", "copy (np.copyto)"} <= {r["impl"] for r in data["timings"]}
    assert not any(r["impl"].startswith("torch") for r in data["timings"])
    assert data["not_measured"]["torch"].startswith("not installed")
    assert data["machine"]["versions"]["torch"].startswith("not installed")


def test_bench_runs_when_pytorch_fails_to_import(tmp_path):
    """An installed PyTorch whose CUDA libraries are broken raises at import: reported."""
    fake = tmp_path / "site" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise OSError('libcudart.so.13: cannot open shared object file')\n")
    out, data = _bench_without_torch(tmp_path, "", {"PYTHONPATH": str(tmp_path / "site")})
    assert "torch.sigmoid(out=)      failed to import (see below)" in out
    assert ("not measured: torch: failed to import: OSError('libcudart.so.13: cannot open "
            "shared object file'); reinstall it to add it: pip install torch") in out
    assert data["timings"] and data["not_measured"]["torch"].startswith("failed to import")


def test_bench_torch_backend_without_pytorch_says_why():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "from xpit.cli import main; raise SystemExit(main(['bench', '--backend', 'torch']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("xpit bench: error: PyTorch is not installed; add it with: "
                                    "pip install torch")
