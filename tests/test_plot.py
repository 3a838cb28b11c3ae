"""``xpit plot``: the three figures, and a clear message without matplotlib."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xpit.cli import main

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("figure", ["sigmoid", "family", "vanishing-gradient"])
def test_each_figure_is_drawn(figure, tmp_path, capsys):
    path = tmp_path / f"{figure}.png"
    assert main(["plot", figure, "-o", str(path)]) == 0
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 20_000
    assert capsys.readouterr().out == f"wrote {path}\n"


def test_the_default_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["plot", "sigmoid"]) == 0
    assert (tmp_path / "sigmoid.png").read_bytes()[:8] == PNG


def test_the_sigmoid_figure_marks_the_derivatives_maximum():
    from xpit.plot import sigmoid_figure

    fig = sigmoid_figure()
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert any("0.25" in t for t in texts)
    assert [line.get_label() for line in ax.get_legend().get_lines()][:2] == [
        r"sigmoid $\sigma(x) = 1 / (1 + e^{-x})$", r"derivative $\sigma(x)\,(1 - \sigma(x))$"]


def test_without_matplotlib_the_command_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from xpit.cli import main; raise SystemExit(main(['plot', 'family', '-o', "
            f"{str(tmp_path / 'f.png')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert result.stderr == ("xpit plot: error: xpit plot needs matplotlib; install it with "
                             "pip install 'xpit[plot]'\n")


def test_gradient_norms_rejects_an_unknown_init():
    from xpit.plot import gradient_norms

    with pytest.raises(ValueError, match="init must be 'xavier' or 'normal', got 'he'"):
        gradient_norms(init="he")
