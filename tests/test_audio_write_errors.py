"""Write errors become one-line ``SepkitError``s with the OS reason and the fix (issue 13, items 3 and 5).

``write_audio`` and ``atomic_path`` turn permission denied, not a directory, no space left on
device, file name too long and read-only file system into ``cannot write OUT: REASON; FIX``,
remove their temporary file and leave an existing output as it was; ``check_writable`` finds the
same problems before any work and creates nothing; ``list_audio_files`` names a folder it cannot
read instead of skipping it. Tests run as root here, where chmod cannot deny anything: permission
errors are simulated (monkeypatch) and the chmod variants skip for root.
"""

from __future__ import annotations

import builtins
import errno
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import sepkit.atomic
import sepkit.audio
from sepkit.atomic import atomic_path, check_writable
from sepkit.audio import list_audio_files, read_audio, write_audio
from sepkit.errors import SepkitError


def _chmod_denies() -> bool:
    """Whether a folder's mode stops us (not for root, which has CAP_DAC_OVERRIDE, as here)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        with tempfile.TemporaryDirectory() as folder:
            os.chmod(folder, 0o555)
            try:
                with open(os.path.join(folder, "probe"), "w"):
                    return False
            except PermissionError:
                return True
            finally:
                os.chmod(folder, 0o755)
    return True


CHMOD_IS_IGNORED = not _chmod_denies()
WAVE = (0.1 * np.random.default_rng(0).standard_normal((2, 4000))).astype(np.float32)


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.fixture
def existing(tmp_path) -> Path:
    """An existing output ``out/o.wav`` whose bytes a failed write must keep."""
    out = tmp_path / "out" / "o.wav"
    out.parent.mkdir()
    sf.write(out, np.full((50, 1), 0.25, np.float32), 8000)
    return out


def _fail_with(monkeypatch, target, name: str, code: int) -> None:
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(args[0]) if args else None)

    monkeypatch.setattr(target, name, fail)


# --- write_audio / atomic_path -----------------------------------------------------------------


def test_parent_is_a_file(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    for out in (blocker / "o.wav", blocker / "sub" / "o.wav"):
        with pytest.raises(SepkitError) as exc:
            write_audio(out, WAVE, 16000)
        assert _one_line(exc) == (
            f"cannot write {out}: not a directory ({blocker} is a file); "
            "choose an output path whose folders are folders, not files"
        )
    assert blocker.read_text() == "keep me" and _listing(tmp_path) == ["notes.txt"]


def test_output_is_a_folder(tmp_path):
    out = tmp_path / "o.wav"
    out.mkdir()
    (out / "inside").write_text("x")
    with pytest.raises(SepkitError, match=r"it is a folder; give a file name, not a folder"):
        write_audio(out, WAVE, 16000)
    assert _listing(tmp_path) == ["o.wav", "o.wav/inside"]


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.EACCES, "permission denied; choose a folder you can write to"),
        (errno.EPERM, "permission denied; choose a folder you can write to"),
        (errno.EROFS, "read-only file system; choose a folder on a writable disk"),
        (errno.ENOSPC, "no space left on device; free some space or choose another disk"),
    ],
)
def test_temporary_file_cannot_be_created(monkeypatch, existing, code, words):
    before = existing.read_bytes()
    _fail_with(monkeypatch, sepkit.atomic.tempfile, "mkstemp", code)
    with pytest.raises(SepkitError) as exc:
        write_audio(existing, WAVE, 16000)
    assert _one_line(exc) == f"cannot write {existing}: {words}"
    assert existing.read_bytes() == before and _listing(existing.parent) == ["o.wav"]


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS, errno.ENOSPC, errno.EIO])
def test_rename_fails(monkeypatch, existing, code):
    """The write succeeded but the rename did not: the old output stays, the temporary goes."""
    before = existing.read_bytes()
    _fail_with(monkeypatch, sepkit.atomic.os, "replace", code)
    with pytest.raises(SepkitError, match=f"cannot write {existing}: "):
        write_audio(existing, WAVE, 16000)
    assert existing.read_bytes() == before and _listing(existing.parent) == ["o.wav"]


@pytest.mark.skipif(CHMOD_IS_IGNORED, reason="root writes into read-only folders; the simulated tests cover it")
def test_read_only_folder_for_real(existing):
    before = existing.read_bytes()
    existing.parent.chmod(0o555)
    try:
        with pytest.raises(SepkitError, match="permission denied; choose a folder you can write to"):
            write_audio(existing, WAVE, 16000)
        with pytest.raises(SepkitError, match="permission denied"):
            check_writable(existing.parent / "new.wav")
    finally:
        existing.parent.chmod(0o755)
    assert existing.read_bytes() == before and _listing(existing.parent) == ["o.wav"]


def _open_dev_full(monkeypatch):
    """Make write_audio's own ``open`` of its temporary file give /dev/full: every write is ENOSPC."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    opened = []

    def fake_open(file, mode="r", *args, **kwargs):
        opened.append(file)
        return builtins.open("/dev/full", mode, *args, **kwargs)

    monkeypatch.setattr(sepkit.audio, "open", fake_open, raising=False)
    return opened


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
@pytest.mark.parametrize("frames", [10, 200_000])  # all in Python's buffer (fails at close), or many writes
def test_no_space_left_on_device(monkeypatch, existing, suffix, frames):
    """A real ENOSPC from the kernel (/dev/full). libsndfile said only "System error." for WAV, and for
    OGG nothing at all: the output was silently truncated."""
    out = existing.with_suffix(suffix)
    out.write_bytes(existing.read_bytes())
    opened = _open_dev_full(monkeypatch)
    with pytest.raises(SepkitError) as exc:
        write_audio(out, np.zeros((1, frames), np.float32), 16000)
    assert _one_line(exc) == f"cannot write {out}: no space left on device; free some space or choose another disk"
    assert opened and out.read_bytes() == existing.read_bytes()
    assert _listing(existing.parent) == sorted({"o.wav", out.name})


def test_no_space_reported_by_a_write_inside_libsndfile(monkeypatch, existing):
    """soundfile.write raising its own error after the file object saw ENOSPC: the errno wins."""
    before = existing.read_bytes()

    class FullDisk:
        def __init__(self, file, mode, *args, **kwargs):
            self.file = builtins.open(file, mode, *args, **kwargs)
            self.written = 0

        def write(self, data):
            if self.written + len(data) > 100:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.written += len(data)
            return self.file.write(data)

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(sepkit.audio, "open", FullDisk, raising=False)
    with pytest.raises(SepkitError, match="no space left on device"):
        write_audio(existing, WAVE, 16000)
    assert existing.read_bytes() == before and _listing(existing.parent) == ["o.wav"]


def test_file_name_too_long(tmp_path):
    out = tmp_path / ("x" * 300 + ".wav")
    with pytest.raises(SepkitError) as exc:
        write_audio(out, WAVE, 16000)
    assert _one_line(exc) == f"cannot write {out}: file name too long; choose a shorter name"
    assert _listing(tmp_path) == []
    with pytest.raises(SepkitError, match="file name too long; choose a shorter name"):
        check_writable(out)


def test_long_but_valid_file_name(tmp_path):
    """The temporary name is short: a 250-byte output name (valid) used to fail, as '.NAME.XXXXXXXX.wav'."""
    out = tmp_path / ("y" * 246 + ".wav")
    write_audio(out, WAVE, 16000)
    check_writable(out)
    assert read_audio(out)[0].shape == WAVE.shape and _listing(tmp_path) == [out.name]


def test_atomic_path_body_errors(tmp_path):
    out = tmp_path / "data.bin"
    out.write_bytes(b"old")
    with pytest.raises(SepkitError, match="no space left on device"):
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"new")
            raise OSError(errno.ENOSPC, "No space left on device")  # as a file object's write raises it
    # An OS error about another file (an input the body reads) is not the output's: it stays as it is.
    with pytest.raises(PermissionError):
        with atomic_path(out) as tmp:
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "input.wav"))
    assert out.read_bytes() == b"old" and _listing(tmp_path) == ["data.bin"]


def test_atomic_path_still_writes(tmp_path):
    out = tmp_path / "new" / "deeper" / "data.bin"
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new" and _listing(out.parent) == ["data.bin"]


@pytest.mark.parametrize(
    "channels, rate, suffix, words",
    [
        (9, 16000, ".flac", "FLAC cannot hold 9-channel audio at 16000 Hz"),
        (1, 800_000, ".flac", "FLAC cannot hold 1-channel audio at 800000 Hz"),
        (1, 250_000, ".ogg", "Vorbis takes at most 200000 Hz"),  # used to segfault
        (300, 16000, ".ogg", "Vorbis takes at most 255 channels"),  # used to segfault
    ],
)
def test_format_cannot_hold_the_audio(tmp_path, channels, rate, suffix, words):
    """In a child process, so that a libsndfile crash fails this test instead of killing pytest."""
    out = tmp_path / f"o{suffix}"
    code = (
        "import sys, numpy as np\n"
        "from sepkit.audio import write_audio\n"
        "from sepkit.errors import SepkitError\n"
        "try:\n"
        f"    write_audio(sys.argv[1], np.zeros(({channels}, 100), np.float32), {rate})\n"
        "except SepkitError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert words in done.stdout and done.stdout.startswith(f"cannot write {out}: ")
    assert _listing(tmp_path) == []


def test_sd2_is_refused(tmp_path):
    with pytest.raises(SepkitError, match="SD2 keeps its header in a separate resource fork; write .wav instead"):
        write_audio(tmp_path / "o.sd2", WAVE, 16000)
    assert _listing(tmp_path) == []


def test_every_other_format_round_trips(tmp_path):
    """Writing through a Python file object works for every format soundfile offers here."""
    for fmt in sorted(set(sf.available_formats()) - {"RAW", "SD2"}):
        out = tmp_path / f"o.{fmt.lower()}"
        try:
            write_audio(out, WAVE, 16000)
        except SepkitError as exc:
            assert "cannot hold 2-channel audio" in str(exc)  # HTK, SDS, SVX, WVE, XI: mono or 8 kHz only
            continue
        wave, rate = read_audio(out)
        assert wave.shape == WAVE.shape and rate == 16000, fmt
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_long_ogg_does_not_crash(tmp_path):
    """One libsndfile call with ~3 minutes of audio overflowed its Vorbis encoder's stack (segfault)."""
    out = tmp_path / "long.ogg"
    code = (
        "import sys, numpy as np\n"
        "from sepkit.audio import write_audio\n"
        "write_audio(sys.argv[1], np.zeros((1, 3_000_000), np.float32), 16000)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert sf.info(out).frames == 3_000_000


# --- check_writable ---------------------------------------------------------------------------


def test_check_writable_accepts_and_creates_nothing(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.wav").write_bytes(b"x")
    for path in (tmp_path / "out" / "new.wav", tmp_path / "out" / "old.wav", tmp_path / "a" / "b" / "c.wav"):
        check_writable(path)
    assert _listing(tmp_path) == ["out", "out/old.wav"]


def test_check_writable_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_writable("o.wav")
    check_writable(Path("sub") / "o.wav")
    assert _listing(tmp_path) == []


def test_check_writable_refuses_a_folder(tmp_path):
    with pytest.raises(SepkitError) as exc:
        check_writable(tmp_path)
    assert _one_line(exc) == f"cannot write {tmp_path}: it is a folder; give a file name, not a folder"


def test_check_writable_parent_is_a_file(tmp_path):
    blocker = tmp_path / "a" / "mix.wav"
    blocker.parent.mkdir()
    blocker.write_bytes(b"RIFF")
    for path in (blocker / "o.wav", blocker / "x" / "y" / "o.wav"):
        with pytest.raises(SepkitError) as exc:
            check_writable(path)
        assert _one_line(exc) == (
            f"cannot write {path}: not a directory ({blocker} is a file); "
            "choose an output path whose folders are folders, not files"
        )
    assert _listing(tmp_path) == ["a", "a/mix.wav"]


def test_check_writable_broken_link_in_the_way(tmp_path):
    (tmp_path / "gone").symlink_to(tmp_path / "missing")
    with pytest.raises(SepkitError, match=r"not a directory \(.*gone is a broken link\)"):
        check_writable(tmp_path / "gone" / "o.wav")
    with pytest.raises(SepkitError, match=r"not a directory \(.*gone is a broken link\)"):
        write_audio(tmp_path / "gone" / "o.wav", WAVE, 16000)
    assert _listing(tmp_path) == ["gone"]


def test_check_writable_long_folder_name(tmp_path):
    with pytest.raises(SepkitError, match="file name too long"):
        check_writable(tmp_path / ("d" * 300) / "o.wav")
    assert _listing(tmp_path) == []


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.EACCES, "permission denied; choose a folder you can write to"),
        (errno.EROFS, "read-only file system; choose a folder on a writable disk"),
        (errno.ENOSPC, "no space left on device; free some space or choose another disk"),
    ],
)
def test_check_writable_probe_fails(monkeypatch, tmp_path, code, words):
    """The probe (a temporary file created and removed) is what finds a read-only mount or a full disk."""
    _fail_with(monkeypatch, sepkit.atomic.tempfile, "mkstemp", code)
    for path in (tmp_path / "o.wav", tmp_path / "new" / "o.wav"):
        with pytest.raises(SepkitError) as exc:
            check_writable(path)
        assert _one_line(exc) == f"cannot write {path}: {words}"
    assert _listing(tmp_path) == []


def test_check_writable_os_access_denies(monkeypatch, tmp_path):
    monkeypatch.setattr(sepkit.atomic.os, "access", lambda *args, **kwargs: False)
    with pytest.raises(SepkitError, match="permission denied; choose a folder you can write to"):
        check_writable(tmp_path / "o.wav")
    assert _listing(tmp_path) == []


def test_check_writable_probe_is_removed(monkeypatch, tmp_path):
    made = []
    real = tempfile.mkstemp

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(sepkit.atomic.tempfile, "mkstemp", spy)
    check_writable(tmp_path / "deep" / "er" / "o.wav")
    assert len(made) == 1 and Path(made[0][1]).parent == tmp_path and _listing(tmp_path) == []


# --- list_audio_files ---------------------------------------------------------------------------


def _audio_tree(root: Path) -> None:
    for name in ("a.wav", "sub/b.wav", "sub/deeper/c.flac", "other/d.wav"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / name, np.zeros(10, np.float32), 8000)


def _deny(monkeypatch, *folders: Path) -> None:
    """Make os.scandir (what os.walk lists with) fail with EACCES on ``folders``, as chmod 000 would."""
    real = os.scandir
    denied = {os.fspath(f) for f in folders}

    def scandir(path="."):
        if os.fspath(path) in denied:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_sub_folder_is_reported(monkeypatch, tmp_path):
    _audio_tree(tmp_path)
    _deny(monkeypatch, tmp_path / "sub")
    with pytest.raises(SepkitError) as exc:
        list_audio_files(tmp_path)
    assert _one_line(exc) == (
        f"folder {tmp_path / 'sub'} cannot be read (permission denied); fix its permissions or give another folder"
    )


def test_unreadable_sub_folders_are_all_named(monkeypatch, tmp_path):
    _audio_tree(tmp_path)
    _deny(monkeypatch, tmp_path / "other", tmp_path / "sub" / "deeper")
    with pytest.raises(SepkitError) as exc:
        list_audio_files(tmp_path)
    message = _one_line(exc)
    assert message.startswith("folders ") and message.endswith("; fix their permissions or give another folder")
    assert f"{tmp_path / 'other'} (permission denied)" in message
    assert f"{tmp_path / 'sub' / 'deeper'} (permission denied)" in message


def test_unreadable_top_folder(monkeypatch, tmp_path):
    _audio_tree(tmp_path)
    _deny(monkeypatch, tmp_path)
    with pytest.raises(SepkitError, match=f"folder {tmp_path} cannot be read \\(permission denied\\)"):
        list_audio_files(tmp_path)
    with pytest.raises(SepkitError, match="does not exist"):
        list_audio_files(tmp_path / "missing")


def test_folder_that_fails_otherwise(monkeypatch, tmp_path):
    _audio_tree(tmp_path)
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(tmp_path / "other"):
            raise OSError(errno.EIO, "Input/output error", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(SepkitError) as exc:
        list_audio_files(tmp_path)
    assert _one_line(exc) == (
        f"folder {tmp_path / 'other'} cannot be read (input/output error); repair or remove it or give another folder"
    )


@pytest.mark.skipif(CHMOD_IS_IGNORED, reason="root reads folders whatever their mode")
def test_unreadable_sub_folder_for_real(tmp_path):
    _audio_tree(tmp_path)
    (tmp_path / "sub").chmod(0)
    try:
        with pytest.raises(SepkitError, match="sub cannot be read \\(permission denied\\)"):
            list_audio_files(tmp_path)
    finally:
        (tmp_path / "sub").chmod(0o755)


def test_symlink_loops_end_and_linked_folders_are_listed_once(tmp_path):
    _audio_tree(tmp_path / "tree")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    sf.write(outside / "e.wav", np.zeros(10, np.float32), 8000)
    (tmp_path / "tree" / "sub" / "loop").symlink_to(tmp_path / "tree")  # a loop back to the top
    (tmp_path / "tree" / "self").symlink_to("self")  # a link to itself
    (tmp_path / "tree" / "linked").symlink_to(outside)  # a folder elsewhere: followed
    (tmp_path / "tree" / "z-again").symlink_to(outside)  # the same folder again: listed once
    found = [p.relative_to(tmp_path / "tree").as_posix() for p in list_audio_files(tmp_path / "tree")]
    assert found == ["a.wav", "linked/e.wav", "other/d.wav", "sub/b.wav", "sub/deeper/c.flac"]
