"""Hard failures of ``apply_file`` and ``xpit apply``, each made to happen for real.

A process killed with SIGKILL or interrupted with SIGINT while it writes, a
full disk (a small tmpfs where the test may mount one, and the file size limit
``RLIMIT_FSIZE``), a destination in a missing or read-only folder, a source
truncated mid-data or with a damaged header. After each, the destination is
untouched (or absent) and no stray file remains in its folder.

The child processes run the real library; the only thing added to them is a
hook that says when the output is being written, and slows the writing down,
so that the signal arrives mid-write and not before or after it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xpit

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and rlimits of POSIX")

N = 1 << 16  # elements of the source: 512 KiB of float64
CHUNK = 1 << 10  # elements per chunk: 64 chunks, each slowed down in the child

# Run in a child: apply_file (or the CLI) with a hook that prints "writing" once a few
# chunks are out and then sleeps between chunks. NAMED=1 turns off O_TMPFILE.
CHILD = textwrap.dedent("""
    import sys, time
    import xpit.batch, xpit._atomic_file
    from xpit._family import elementwise
    mode, src, dst, overwrite, named = sys.argv[1:6]
    truncate = len(sys.argv) > 6  # cut the source short while it is being read
    if named == "1":
        xpit._atomic_file._open_anonymous = lambda folder: None
    calls = 0
    def slow(*args, **kwargs):
        global calls
        calls += 1
        if calls == 4:
            if truncate:
                with open(src, "r+b") as f:
                    f.truncate(f.seek(0, 2) // 2)
            print("writing", flush=True)
        if calls >= 4:
            time.sleep(0.05)
        return elementwise(*args, **kwargs)
    xpit.batch.elementwise = slow
    if mode == "api":
        xpit.batch.apply_file("sigmoid", src, dst, chunk_size={chunk}, overwrite=overwrite == "1",
                              progress=False)
    else:
        from xpit.cli import main
        argv = ["apply", "sigmoid", src, dst, "--chunk-size", "{chunk}", "--no-progress"]
        sys.exit(main(argv + (["--force"] if overwrite == "1" else [])))
""").format(chunk=CHUNK)


def _source(folder: Path) -> Path:
    src = folder / "in.npy"
    np.save(src, np.linspace(-30.0, 30.0, N))
    return src


def _existing(dst: Path) -> bytes:
    """Give ``dst`` known content, to check later that it was left untouched."""
    np.save(dst, np.arange(7.0))
    return dst.read_bytes()


def _assert_clean(folder: Path, *names: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def _signal_mid_write(tmp_path: Path, mode: str, sig: int, *, overwrite: bool = False,
                      named: bool = False) -> subprocess.CompletedProcess:
    src, dst = _source(tmp_path), tmp_path / "out.npy"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(src), str(dst), str(int(overwrite)),
         str(int(named))], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing", child.stderr.read()
        child.send_signal(sig)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


@pytest.mark.parametrize("mode", ["api", "cli"])
@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
def test_sigkill_mid_write_leaves_nothing(tmp_path, mode, overwrite):
    before = _existing(tmp_path / "out.npy") if overwrite else None
    result = _signal_mid_write(tmp_path, mode, signal.SIGKILL, overwrite=overwrite)
    assert result.returncode == -signal.SIGKILL
    if overwrite:
        assert (tmp_path / "out.npy").read_bytes() == before
        _assert_clean(tmp_path, "in.npy", "out.npy")
    else:
        _assert_clean(tmp_path, "in.npy")


def test_sigkill_without_o_tmpfile_leaves_a_file_the_next_run_removes(tmp_path):
    result = _signal_mid_write(tmp_path, "api", signal.SIGKILL, named=True)
    assert result.returncode == -signal.SIGKILL
    (leftover,) = (p for p in tmp_path.iterdir() if p.name != "in.npy")
    assert leftover.name.startswith(".out.npy.xpit-") and leftover.name.endswith(".tmp")
    xpit.batch.apply_file("sigmoid", tmp_path / "in.npy", tmp_path / "out.npy")
    _assert_clean(tmp_path, "in.npy", "out.npy")
    assert np.array_equal(np.load(tmp_path / "out.npy"),
                          xpit.sigmoid(np.load(tmp_path / "in.npy")))


@pytest.mark.parametrize("named", [False, True], ids=["o_tmpfile", "named"])
@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
def test_sigint_mid_write_in_the_api(tmp_path, named, overwrite):
    before = _existing(tmp_path / "out.npy") if overwrite else None
    result = _signal_mid_write(tmp_path, "api", signal.SIGINT, overwrite=overwrite, named=named)
    assert result.returncode != 0 and "KeyboardInterrupt" in result.stderr
    if overwrite:
        assert (tmp_path / "out.npy").read_bytes() == before
        _assert_clean(tmp_path, "in.npy", "out.npy")
    else:
        _assert_clean(tmp_path, "in.npy")


def test_sigint_mid_write_in_the_cli(tmp_path):
    before = _existing(tmp_path / "out.npy")
    result = _signal_mid_write(tmp_path, "cli", signal.SIGINT, overwrite=True)
    assert result.returncode == 130
    assert "xpit apply: interrupted" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "out.npy").read_bytes() == before
    _assert_clean(tmp_path, "in.npy", "out.npy")


@pytest.mark.parametrize("named", [False, True], ids=["o_tmpfile", "named"])
def test_source_cut_short_while_it_is_read(tmp_path, named):
    """The header promised more data than the file holds by the time it is read."""
    src, dst = _source(tmp_path), tmp_path / "out.npy"
    before = _existing(dst)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, "api", str(src), str(dst), "1", str(int(named)),
         "truncate"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"ValueError: xpit.batch.apply_file: {str(src)!r} ended early")
    assert dst.read_bytes() == before
    _assert_clean(tmp_path, "in.npy", "out.npy")


@pytest.mark.parametrize("named", [False, True], ids=["o_tmpfile", "named"])
def test_threads_writing_one_destination_do_not_collide(tmp_path, monkeypatch, named):
    from concurrent.futures import ThreadPoolExecutor

    if named:
        monkeypatch.setattr(xpit._atomic_file, "_open_anonymous", lambda folder: None)
    src, dst = _source(tmp_path), tmp_path / "out.npy"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: xpit.batch.apply_file("sigmoid", src, dst, overwrite=True,
                                                      chunk_size=CHUNK), range(8)))
    assert np.array_equal(np.load(dst), xpit.sigmoid(np.load(src)))
    _assert_clean(tmp_path, "in.npy", "out.npy")


def test_leftovers_are_removed_only_for_dead_processes_on_this_host(tmp_path):
    import socket

    from xpit._atomic_file import remove_leftovers

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = socket.gethostname()
    names = {
        "dead": f".out.npy.xpit-{host}-{dead}-0a1b2c3d.tmp",
        "alive": f".out.npy.xpit-{host}-{os.getppid()}-0a1b2c3d.tmp",
        "mine": f".out.npy.xpit-{host}-{os.getpid()}-0a1b2c3d.tmp",
        "other host": f".out.npy.xpit-{host}x-{dead}-0a1b2c3d.tmp",
        "other file": f".other.npy.xpit-{host}-{dead}-0a1b2c3d.tmp",
        "not a pid": f".out.npy.xpit-{host}-\u00b2-0a1b2c3d.tmp",
        "user data": "out.npy",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    removed = remove_leftovers(tmp_path / "out.npy")
    assert [p.name for p in removed] == [names["dead"]]
    _assert_clean(tmp_path, *(n for key, n in names.items() if key != "dead"))


# --- a full disk ---------------------------------------------------------------------------

# JAX, once the backend matrix has imported it in this session, warns at every fork
# (preexec_fn forks in Python) that its threads may deadlock the child; these children
# only set a limit and exec a fresh Python, which never touches JAX's state.
_FORKS_AFTER_JAX = pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")


def _limit_file_size(limit: int):
    def preexec() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


@_FORKS_AFTER_JAX
@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
def test_file_size_limit_is_a_clear_error(tmp_path, overwrite):
    src, dst = _source(tmp_path), tmp_path / "out.npy"
    before = _existing(dst) if overwrite else None
    code = (f"import xpit; xpit.batch.apply_file('sigmoid', {str(src)!r}, {str(dst)!r}, "
            f"overwrite={overwrite})")
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            preexec_fn=_limit_file_size(N * 8 // 2), timeout=120)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    state = "replaced" if overwrite else "created"
    assert message == (f"OSError: xpit.batch.apply_file: cannot write {str(dst)!r}: the file size "
                       f"limit was reached (EFBIG; see ulimit -f); the destination was not "
                       f"{state} and no partial output was left")
    if overwrite:
        assert dst.read_bytes() == before
        _assert_clean(tmp_path, "in.npy", "out.npy")
    else:
        _assert_clean(tmp_path, "in.npy")


@_FORKS_AFTER_JAX
def test_file_size_limit_in_the_cli(tmp_path):
    src, dst = _source(tmp_path), tmp_path / "out.npy"
    result = subprocess.run([sys.executable, "-m", "xpit", "apply", "sigmoid", str(src),
                             str(dst), "--no-progress"], capture_output=True, text=True,
                            preexec_fn=_limit_file_size(N * 8 // 2), timeout=120)
    assert result.returncode == 1
    assert result.stderr == (f"xpit apply: error: cannot write {str(dst)!r}: the file size "
                             "limit was reached (EFBIG; see ulimit -f); the destination was "
                             "not created and no partial output was left\n")
    _assert_clean(tmp_path, "in.npy")


@contextlib.contextmanager
def _tmpfs(where: Path, options: str):
    """A tmpfs mounted at ``where``, or a skip where this process may not mount one."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                             capture_output=True, text=True) if os.geteuid() == 0 else None
    if mounted is None or mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + (mounted.stderr.strip() if mounted
                                                       else "not root"))
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@pytest.mark.parametrize("named", [False, True], ids=["o_tmpfile", "named"])
def test_full_disk_is_a_clear_error(tmp_path, monkeypatch, named):
    src = _source(tmp_path)
    if named:
        monkeypatch.setattr(xpit._atomic_file, "_open_anonymous", lambda folder: None)
    with _tmpfs(tmp_path / "small", "size=256k") as small:
        dst = small / "out.npy"
        with pytest.raises(OSError) as info:
            xpit.batch.apply_file("sigmoid", src, dst)
        assert info.value.errno == errno.ENOSPC
        assert str(info.value) == (
            f"xpit.batch.apply_file: cannot write {str(dst)!r}: no space is left on the device "
            "(ENOSPC); the destination was not created and no partial output was left")
        _assert_clean(small)
        assert os.statvfs(small).f_bfree == os.statvfs(small).f_blocks  # all space is back


# --- bad destinations and bad sources ------------------------------------------------------

def test_destination_in_a_missing_folder(tmp_path):
    src = _source(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"the folder of .* does not exist"):
        xpit.batch.apply_file("sigmoid", src, tmp_path / "nowhere" / "out.npy")
    _assert_clean(tmp_path, "in.npy")


@pytest.mark.parametrize("named", [False, True], ids=["o_tmpfile", "named"])
def test_destination_in_a_read_only_folder(tmp_path, monkeypatch, named):
    src = _source(tmp_path)
    if named:
        monkeypatch.setattr(xpit._atomic_file, "_open_anonymous", lambda folder: None)
    if os.geteuid() == 0:  # root writes into any folder: make a read-only file system
        context = _tmpfs(tmp_path / "ro", "ro,size=64k")
        expected = "the file system is read-only"
    else:
        (tmp_path / "ro").mkdir(mode=0o555)
        context = contextlib.nullcontext(tmp_path / "ro")
        expected = f"permission denied in {str(tmp_path / 'ro')!r}"
    with context as folder:
        dst = folder / "out.npy"
        with pytest.raises(OSError) as info:
            xpit.batch.apply_file("sigmoid", src, dst)
        assert str(info.value) == (f"xpit.batch.apply_file: cannot write {str(dst)!r}: "
                                   f"{expected}; the destination was not created and no "
                                   "partial output was left")
        _assert_clean(folder)


def _truncated(src: Path) -> None:
    data = src.read_bytes()
    src.write_bytes(data[: len(data) - N * 8 // 2])  # half the data is gone


def _damaged_header(src: Path) -> None:
    data = bytearray(src.read_bytes())
    at = data.index(b"'descr'")
    data[at:at + 7] = b"'descX'"
    src.write_bytes(bytes(data))


@pytest.mark.parametrize(("damage", "message"), [
    (_truncated, "is truncated: 262144 bytes of data are missing"),
    (_damaged_header, r"has a damaged \.npy header"),
])
@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
def test_damaged_source(tmp_path, damage, message, overwrite):
    src, dst = _source(tmp_path), tmp_path / "out.npy"
    damage(src)
    before = _existing(dst) if overwrite else None
    with pytest.raises(ValueError, match=message):
        xpit.batch.apply_file("sigmoid", src, dst, overwrite=overwrite)
    if overwrite:
        assert dst.read_bytes() == before
        _assert_clean(tmp_path, "in.npy", "out.npy")
    else:
        _assert_clean(tmp_path, "in.npy")


def test_a_closed_pipe_ends_the_cli_quietly():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written, as in `xpit info | true`
    try:
        result = subprocess.run([sys.executable, "-m", "xpit", "info", "--json"], stdout=write,
                                stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write)
    assert result.stderr == ""
    assert result.returncode == 128 + signal.SIGPIPE


@pytest.mark.parametrize("named", [False, True], ids=["o_tmpfile", "named"])
def test_a_destination_that_appears_meanwhile_is_kept(tmp_path, monkeypatch, named):
    from xpit._atomic_file import output_file

    if named:
        monkeypatch.setattr(xpit._atomic_file, "_open_anonymous", lambda folder: None)
    dst = tmp_path / "out.npy"
    with pytest.raises(FileExistsError) as info:
        with output_file("xpit.batch.apply_file", dst, overwrite=False) as w:
            w.write(b"result")
            dst.write_bytes(b"the user's file")  # another program creates it meanwhile
    assert str(info.value) == (
        f"xpit.batch.apply_file: {str(dst)!r} appeared while the output was written and is "
        "kept; nothing was written over it (pass overwrite=True to replace it)")
    assert dst.read_bytes() == b"the user's file"
    _assert_clean(tmp_path, "out.npy")
