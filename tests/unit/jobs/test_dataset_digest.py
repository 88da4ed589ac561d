"""Dataset digests: content only, cached by stat, links and devices refused."""

import dataclasses
import hashlib
import os
import time

import pytest
import rfc8785

from jobs.datasets import readable_hint, scan
from jobs.errors import DatasetError

FILES = {"train.csv": b"a,b\n1,2\n", "sub/test.csv": b"a,b\n3,4\n", "sub/deep/x.bin": b"\0\1"}


def make(folder, files=FILES):
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def expected_digest(files):
    rows = [
        {"path": p, "size": len(d), "sha256": "sha256:" + hashlib.sha256(d).hexdigest()}
        for p, d in sorted(files.items())
    ]
    return "sha256:" + hashlib.sha256(rfc8785.dumps(rows)).hexdigest()


def test_digest_is_the_hash_of_the_canonical_sorted_manifest(tmp_path):
    result = scan(make(tmp_path / "d"))
    assert result.digest == expected_digest(FILES)
    assert [e.path for e in result.entries] == ["sub/deep/x.bin", "sub/test.csv", "train.csv"]
    assert (result.files, result.bytes) == (3, sum(len(d) for d in FILES.values()))
    assert result.hashed == 3
    assert result.unreadable == ()


def test_digest_depends_on_content_only(tmp_path):
    a = scan(make(tmp_path / "a"))
    b_folder = make(tmp_path / "b")
    for i, path in enumerate(b_folder.rglob("*")):
        os.utime(path, ns=(i * 10**9, i * 10**9))
    assert scan(b_folder).digest == a.digest
    (b_folder / "train.csv").write_bytes(b"a,b\n1,3\n")
    assert scan(b_folder).digest != a.digest


def later():
    """A clock ten seconds ahead, so files written by the test count as settled."""
    return time.time_ns() + 10 * 10**9


def test_cache_skips_unchanged_settled_files(tmp_path):
    folder = make(tmp_path / "d")
    first = scan(folder, now_ns=later)
    again = scan(folder, first.cache, now_ns=later)
    assert again.hashed == 0
    assert again.digest == first.digest


def test_change_right_after_a_scan_is_caught_even_with_same_size_and_mtime(tmp_path):
    folder = make(tmp_path / "d")
    first = scan(folder)
    path = folder / "train.csv"
    st = path.stat()
    path.write_bytes(b"a,b\n9,9\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = scan(folder, first.cache)
    assert changed.digest == expected_digest({**FILES, "train.csv": b"a,b\n9,9\n"})


def test_replaced_file_with_same_size_and_mtime_is_rehashed(tmp_path):
    folder = make(tmp_path / "d")
    first = scan(folder, now_ns=later)
    path = folder / "train.csv"
    st = path.stat()
    replacement = folder / "new.tmp"
    replacement.write_bytes(b"a,b\n7,7\n")
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, path)
    changed = scan(folder, first.cache, now_ns=later)
    assert changed.hashed == 1
    assert changed.digest == expected_digest({**FILES, "train.csv": b"a,b\n7,7\n"})


def test_a_fresh_hash_is_not_trusted_until_the_file_has_settled(tmp_path):
    folder = make(tmp_path / "d")
    first = scan(folder)  # files were written moments ago: racily clean
    assert scan(folder, first.cache).hashed == 3
    assert scan(folder, scan(folder, now_ns=later).cache).hashed == 0


def test_a_cache_entry_whose_stat_differs_is_not_trusted(tmp_path):
    folder = make(tmp_path / "d")
    first = scan(folder, now_ns=later)
    stale = dict(first.cache)
    stale["train.csv"] = dataclasses.replace(
        stale["train.csv"], mtime_ns=stale["train.csv"].mtime_ns - 1, sha256="sha256:" + "0" * 64
    )
    assert scan(folder, stale, now_ns=later).digest == first.digest


def test_new_and_removed_files_change_the_digest(tmp_path):
    folder = make(tmp_path / "d")
    first = scan(folder)
    (folder / "extra.csv").write_bytes(b"x")
    assert scan(folder, first.cache).digest != first.digest
    (folder / "extra.csv").unlink()
    (folder / "sub" / "test.csv").unlink()
    assert scan(folder, first.cache).digest == expected_digest(
        {k: v for k, v in FILES.items() if k != "sub/test.csv"}
    )


def test_symlink_in_dataset_is_refused(tmp_path):
    folder = make(tmp_path / "d")
    (folder / "sub" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(DatasetError, match="sub/passwd is a symbolic link") as info:
        scan(folder)
    assert info.value.path == "sub/passwd"


def test_fifo_in_dataset_is_refused(tmp_path):
    folder = make(tmp_path / "d")
    os.mkfifo(folder / "pipe")
    with pytest.raises(DatasetError, match="pipe is a fifo"):
        scan(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        scan(tmp_path / "nope")


def test_files_others_cannot_read_are_listed_with_the_fix(tmp_path):
    folder = make(tmp_path / "d")
    os.chmod(folder / "train.csv", 0o600)
    os.chmod(folder / "sub" / "deep", 0o700)
    result = scan(folder)
    assert result.unreadable == ("sub/deep/", "train.csv")
    hint = readable_hint(result)
    assert "train.csv" in hint
    assert f"chmod -R o+rX {folder}" in hint


def test_scan_reports_running_totals_of_files_and_bytes_cached_or_not(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"x" * 10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.csv").write_bytes(b"y" * 5)
    heard: list[tuple[int, int]] = []
    first = scan(tmp_path, progress=lambda files, size: heard.append((files, size)))
    assert heard[-1] == (2, 15)
    assert [f for f, _ in heard] == [1, 2]
    again: list[tuple[int, int]] = []
    scan(tmp_path, first.cache, progress=lambda files, size: again.append((files, size)))
    assert again[-1] == (2, 15)
