"""The ``xpit`` command."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import xpit
from xpit.cli import main


def test_info_reports_backends_and_selection(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"xpit {xpit.__version__}")
    assert f"numpy  {np.__version__}" in out
    assert "cupy" in out
    assert "host data computed by: numpy (requested 'numpy' by default)" in out


def test_info_json_has_every_field(capsys, backend_env):
    backend_env("auto")
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["xpit"] == xpit.__version__
    assert set(info["backends"]) == {"numpy", "cupy"}
    numpy_info = info["backends"]["numpy"]
    assert numpy_info["usable"] is True and numpy_info["devices"] == ["cpu"]
    cupy_info = info["backends"]["cupy"]
    assert isinstance(cupy_info["usable"], bool) and cupy_info["reason"]
    assert info["selected"]["requested"] == "auto"
    assert info["selected"]["source"] == "XPIT_BACKEND"


def test_info_shows_an_invalid_environment_value_instead_of_crashing(capsys, backend_env):
    backend_env("cuda")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "Invalid value for XPIT_BACKEND: 'cuda'" in out


def test_python_dash_m_xpit_runs():
    result = subprocess.run([sys.executable, "-m", "xpit", "info", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["backends"]["numpy"]["usable"] is True


def test_usage_error_exits_non_zero():
    result = subprocess.run([sys.executable, "-m", "xpit", "nonsense"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
