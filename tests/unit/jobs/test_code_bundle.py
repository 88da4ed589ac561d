"""Code bundles: the same folder gives the same digest; crafted archives are refused."""

import io
import os
import stat
import tarfile

import pytest

from jobs.bundle import diff, extract, file_list, open_bundle, pack
from jobs.digests import sha256_digest
from jobs.errors import BundleError, TooLarge

FILES = {
    "job.yaml": b"name: t\ncommand: [python, train.py]\n",
    "train.py": b"print('hi')\n",
    "lib/util.py": b"X = 1\n",
    "lib/deep/more.py": b"Y = 2\n",
    "data/notes.txt": "caf\u00e9\n".encode(),
}
CAPS = {"max_files": 100, "max_bytes": 1 << 20}


def make(folder, files=FILES, order=None):
    folder.mkdir(parents=True, exist_ok=True)
    for rel in order or files:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[rel])
    return folder


def test_same_folder_same_digest_whatever_the_metadata(tmp_path):
    first = pack(make(tmp_path / "a"))
    b = make(tmp_path / "b", order=list(reversed(list(FILES))))
    for i, path in enumerate(sorted(b.rglob("*"))):
        os.utime(path, (1_000_000 + i * 7777, 2_000_000 + i * 9999))
        os.chown(path, 1234 + i, 4321 + i)
        os.chmod(path, 0o700 if path.is_dir() else (0o600 if i % 2 else 0o755))
    second = pack(b)
    assert first.digest == second.digest
    assert first.data == second.data
    assert first.digest == sha256_digest(first.data)
    assert first.files == (
        "data/notes.txt",
        "job.yaml",
        "lib/deep/more.py",
        "lib/util.py",
        "train.py",
    )


def test_headers_are_normalized(tmp_path):
    folder = make(tmp_path / "a")
    os.chmod(folder / "train.py", 0o600)
    with tarfile.open(fileobj=io.BytesIO(pack(folder).data)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == [
        "data",
        "data/notes.txt",
        "job.yaml",
        "lib",
        "lib/deep",
        "lib/deep/more.py",
        "lib/util.py",
        "train.py",
    ]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
        assert m.mode == (0o755 if m.isdir() else 0o644)


def test_a_change_changes_the_digest(tmp_path):
    a = pack(make(tmp_path / "a"))
    b = make(tmp_path / "b")
    (b / "train.py").write_bytes(b"print('ho')\n")
    assert pack(b).digest != a.digest


def test_git_pycache_and_c2dignore_are_left_out(tmp_path):
    folder = make(tmp_path / "a")
    make(folder, {".git/HEAD": b"ref", "lib/__pycache__/u.pyc": b"\0", "__pycache__": b"x"})
    make(
        folder,
        {
            "data/big.csv": b"1,2\n",
            "out/model.pkl": b"m",
            "logs/a/b.log": b"l",
            "keep.csv.txt": b"k",
            "sub/data/x.csv": b"y",
        },
    )
    (folder / ".c2dignore").write_text("# data stays home\n*.csv\n/out/\nlogs/**\n\n")
    files = pack(folder).files
    assert ".c2dignore" in files
    assert "keep.csv.txt" in files
    for gone in (
        ".git/HEAD",
        "lib/__pycache__/u.pyc",
        "__pycache__",
        "data/big.csv",
        "out/model.pkl",
        "logs/a/b.log",
        "sub/data/x.csv",
    ):
        assert gone not in files
    with_ignored = pack(folder)
    os.remove(folder / "data/big.csv")
    assert pack(folder).digest == with_ignored.digest


def test_ignore_patterns_anchor_and_dir_only(tmp_path):
    folder = make(tmp_path / "a", {"build": b"file named build", "x/build/y": b"dir"})
    (folder / ".c2dignore").write_text("build/\n")
    assert pack(folder).files == (".c2dignore", "build")


def test_negation_in_c2dignore_is_an_error(tmp_path):
    folder = make(tmp_path / "a")
    (folder / ".c2dignore").write_text("*.txt\n!keep.txt\n")
    with pytest.raises(BundleError, match="line 2: negation"):
        pack(folder)


def test_symlink_in_job_folder_is_refused_by_name(tmp_path):
    folder = make(tmp_path / "a")
    (folder / "lib" / "secret").symlink_to("/etc/passwd")
    with pytest.raises(BundleError, match="lib/secret is a symbolic link") as info:
        pack(folder)
    assert info.value.member == "lib/secret"


def test_fifo_in_job_folder_is_refused(tmp_path):
    folder = make(tmp_path / "a")
    os.mkfifo(folder / "pipe")
    with pytest.raises(BundleError, match="pipe is a fifo"):
        pack(folder)


def test_ignored_symlink_is_fine(tmp_path):
    folder = make(tmp_path / "a")
    (folder / "venv").mkdir()
    (folder / "venv" / "python").symlink_to("/usr/bin/python3")
    (folder / ".c2dignore").write_text("venv/\n")
    assert "venv/python" not in pack(folder).files


def test_pack_limits(tmp_path):
    folder = make(tmp_path / "a")
    with pytest.raises(TooLarge, match="more than 3 files"):
        pack(folder, max_files=3)
    with pytest.raises(TooLarge, match=r"more than 20B .*c2dignore"):
        pack(folder, max_bytes=20)


def test_round_trip_through_extract(tmp_path):
    bundle = pack(make(tmp_path / "a"))
    dest = tmp_path / "out"
    assert sorted(extract(bundle, dest, **CAPS)) == list(bundle.files)
    for rel, content in FILES.items():
        path = dest / rel
        assert path.read_bytes() == content
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    for folder in (dest, dest / "lib", dest / "lib" / "deep", dest / "data"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert pack(dest).digest == bundle.digest


def test_open_bundle_and_file_list(tmp_path):
    bundle = pack(make(tmp_path / "a"))
    opened = open_bundle(bundle.data, **CAPS)
    assert opened == bundle
    assert file_list(bundle.data) == list(bundle.files)
    path = tmp_path / "b.tar"
    path.write_bytes(bundle.data)
    assert file_list(path) == list(bundle.files)


# ---- crafted archives -------------------------------------------------------------------


def craft(*members):
    """Build a tar from (name, type, payload_or_linkname) without any of pack's care."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(extra)
                tar.addfile(info, io.BytesIO(extra))
            else:
                if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                    info.linkname = extra
                tar.addfile(info)
    return buffer.getvalue()


REG, DIR = tarfile.REGTYPE, tarfile.DIRTYPE

CRAFTED = {
    "dotdot": ([("../x", REG, b"evil")], "'..'", "../x"),
    "nested dotdot": ([("a/../../x", REG, b"evil")], "'..'", "a/../../x"),
    "absolute": ([("/etc/x", REG, b"evil")], "absolute", "/etc/x"),
    "symlink": ([("link", tarfile.SYMTYPE, "/etc/passwd")], "symbolic link", "link"),
    "hardlink": ([("a", REG, b"x"), ("h", tarfile.LNKTYPE, "/etc/shadow")], "hard link", "h"),
    "char device": ([("null", tarfile.CHRTYPE, None)], "device", "null"),
    "block device": ([("sda", tarfile.BLKTYPE, None)], "device", "sda"),
    "fifo": ([("p", tarfile.FIFOTYPE, None)], "fifo", "p"),
    "duplicate": ([("a", REG, b"1"), ("./a", REG, b"2")], "more than once", "a"),
    "duplicate folder": ([("d", DIR, None), ("d/", DIR, None)], "more than once", "d"),
    "file as folder": ([("a", REG, b"1"), ("a/b", REG, b"2")], "which is a file", "a/b"),
    # A path an earlier member made a folder cannot be a member of its own afterwards:
    # extraction would meet a folder where it creates the file (FileExistsError).
    "file after files inside it": (
        [("a/b", REG, b"1"), ("a", REG, b"2")],
        "after members inside it",
        "a",
    ),
    "folder after files inside it": (
        [("a/b/c", REG, b"1"), ("a/b", DIR, None)],
        "after members inside it",
        "a/b",
    ),
    "folder after its own folder entry's files": (
        [("d", DIR, None), ("d/x", REG, b"1"), ("d/", DIR, None)],
        "after members inside it",
        "d",
    ),
    "too many files": ([(f"f{i}", REG, b"") for i in range(101)], "more than 100", "f100"),
    "too many bytes": ([("big", REG, b"x" * ((1 << 20) + 1))], "more than", "big"),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_archives_are_refused_and_nothing_is_written(tmp_path, case):
    members, message, member = CRAFTED[case]
    data = craft(*members)
    dest = tmp_path / "out"
    with pytest.raises(BundleError, match=message) as info:
        extract(data, dest, **CAPS)
    assert info.value.member == member
    assert repr(member) in str(info.value)
    assert not dest.exists()
    assert not (tmp_path / "x").exists()
    with pytest.raises(BundleError):
        file_list(data, **CAPS)


HIDING_NAMES = {
    "escape": "run\x1b[1A\x1b[2K.py",
    "bidi override": "train\u202eyp.sh",
    "c1 csi": "a\x9bb.py",
    "newline": "a\nb.py",
    "zero-width": "tra\u200bin.py",
    "not utf-8": "caf\udce9.py",
}


@pytest.mark.parametrize("case", HIDING_NAMES)
def test_a_member_name_that_hides_is_refused_and_named_escaped(tmp_path, case):
    name = HIDING_NAMES[case]
    data = craft(("ok.py", REG, b"1"), (f"src/{name}", REG, b"2"))
    with pytest.raises(BundleError, match="control or invisible character") as info:
        file_list(data, **CAPS)
    message = str(info.value)
    assert info.value.member == f"src/{name}"
    assert all(ch.isprintable() for ch in message), message
    assert "\\" in message  # the character is named as an escape
    with pytest.raises(BundleError):
        extract(data, tmp_path / "out", **CAPS)
    assert not (tmp_path / "out").exists()


def test_pack_refuses_a_file_name_that_hides_unless_it_is_ignored(tmp_path):
    folder = make(tmp_path / "job")
    (folder / "lib" / "x\x1b[2K\u202e.py").write_bytes(b"evil = 1\n")
    with pytest.raises(BundleError, match="control or invisible") as info:
        pack(folder)
    assert "lib/x\\x1b[2K\\u202e.py" in str(info.value)
    assert "\x1b" not in str(info.value)
    (folder / ".c2dignore").write_text("x*.py\n")
    assert "lib/util.py" in pack(folder).files


def test_the_upload_check_accepts_exactly_what_extraction_writes(tmp_path):
    """Implicit parents, folder entries first, and deep trees pass both; see CRAFTED for the
    shapes both refuse."""
    data = craft(
        ("a/b/c.py", REG, b"1"),
        ("a/b/d.py", REG, b"2"),
        ("e", DIR, None),
        ("e/f.py", REG, b"3"),
        ("a/g.py", REG, b"4"),
    )
    listed = file_list(data, **CAPS)
    assert sorted(extract(data, tmp_path / "out", **CAPS)) == listed
    assert (tmp_path / "out/a/b/c.py").read_bytes() == b"1"


def test_a_member_the_disk_refuses_is_a_bundle_error_naming_it(tmp_path, monkeypatch):
    """Whatever the disk says while extracting, the caller gets a BundleError (a dry run or a
    run records it and ends) rather than a bare OSError that would be retried forever."""
    import jobs.tarsafe

    def refuse(*args, **kwargs):
        raise FileExistsError(17, "File exists")

    monkeypatch.setattr(jobs.tarsafe, "_write_file", refuse)
    with pytest.raises(
        BundleError, match=r"cannot extract bundle member 'data/notes\.txt': File exists"
    ):
        extract(pack(make(tmp_path / "a")), tmp_path / "out", **CAPS)
    assert not (tmp_path / "out").exists()


def test_not_a_tar_is_a_bundle_error(tmp_path):
    with pytest.raises(BundleError, match="not a valid code bundle"):
        extract(b"hello" * 200, tmp_path / "out", **CAPS)


def test_extract_refuses_a_non_empty_destination(tmp_path):
    bundle = pack(make(tmp_path / "a"))
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old").write_text("x")
    with pytest.raises(BundleError, match="empty folder"):
        extract(bundle, dest, **CAPS)


# ---- diff ----------------------------------------------------------------------------------


def test_diff_between_two_bundles(tmp_path):
    old = pack(make(tmp_path / "a"))
    new_folder = make(tmp_path / "b")
    (new_folder / "train.py").write_bytes(b"print('hi')\nprint('more')\n")
    (new_folder / "lib" / "util.py").unlink()
    (new_folder / "new.py").write_bytes(b"Z = 3")
    (new_folder / "blob.bin").write_bytes(b"\x00\x01")
    text = diff(old, pack(new_folder))
    assert "--- a/train.py\n+++ b/train.py\n" in text
    assert "+print('more')\n" in text
    assert "--- a/lib/util.py\n+++ /dev/null\n" in text
    assert "--- /dev/null\n+++ b/new.py\n" in text
    assert "+Z = 3\n\\ No newline at end of file\n" in text
    assert "Binary files /dev/null and b/blob.bin differ\n" in text
    assert "job.yaml" not in text


def test_diff_of_identical_bundles_is_empty_and_none_means_all_new(tmp_path):
    bundle = pack(make(tmp_path / "a"))
    assert diff(bundle, bundle) == ""
    everything = diff(None, bundle)
    assert everything.count("--- /dev/null") == len(FILES)
