"""The data host's side of the output checks: facts read from its own stored copies."""

from jobs.models import OutputFile
from jobs.output_checks import OutputChecks
from runner.artifacts import ArtifactStore
from runner.host.output_checks import check_outputs, count_lines, facts_of


def stored(store: ArtifactStore, name: str, data: bytes, claimed: int | None = None) -> OutputFile:
    digest, size = store.put_bytes(data)
    return OutputFile(name=name, sha256=digest, bytes=size if claimed is None else claimed)


def test_lines_are_counted_with_or_without_a_last_newline(tmp_path):
    store = ArtifactStore(tmp_path)
    for data, lines in [(b"", 0), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"\n\n\n", 3)]:
        assert count_lines(store, store.put_bytes(data)[0]) == lines


def test_sizes_and_lines_come_from_the_stored_file_not_the_outcome(tmp_path):
    store = ArtifactStore(tmp_path)
    rows = b"".join(b"%d,secret\n" % i for i in range(1500))
    outputs = [stored(store, "rows.csv", rows, claimed=1), stored(store, "model.skops", b"x" * 10)]
    facts = {f.name: f for f in facts_of(store, outputs)}
    assert facts["rows.csv"].bytes == len(rows)
    assert facts["rows.csv"].rows == 1500
    assert facts["model.skops"].rows is None
    results = {r.check: r for r in check_outputs(store, outputs, {}, OutputChecks())}
    assert not results["max_rows"].passed
    assert "rows.csv (1500 lines)" in results["max_rows"].detail
