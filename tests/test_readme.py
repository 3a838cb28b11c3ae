"""The README's shell commands run as written (its Python blocks run as doctests)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import numpy as np

README = pathlib.Path(__file__).parent.parent / "README.md"


def _sh_block(after_heading: str) -> list[str]:
    text = README.read_text()
    section = text[text.index(after_heading):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_command_line_block_runs(tmp_path):
    np.save(tmp_path / "in.npy", np.linspace(-5, 5, 1000))
    bin_dir = os.path.dirname(sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "XPIT_BACKEND"}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    commands = _sh_block("## The command line")
    assert len(commands) >= 6
    for command in commands:
        command = re.sub(r"^python ", f"{sys.executable} ", command)
        result = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        assert "Traceback" not in result.stderr, command
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"),
                               1 / (1 + np.exp(-np.linspace(-5, 5, 1000))), rtol=1e-15)
    assert (tmp_path / "b.png").exists() and (tmp_path / "sigmoid.png").exists()
