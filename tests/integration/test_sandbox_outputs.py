"""Only declared regular files leave a job, within their limits, hashed into the store.

Each attack is made from inside a real container; each test shows it fails (the job is
rejected with a reason a person can act on) and that the data never reaches the store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from runner.host.sandbox import RunResult, SandboxSpec, State
from runner.host.sandbox.workdir import job_dir
from tests.kit.sandbox import SECRET, SMALL, Sandbox, reported

pytestmark = pytest.mark.docker

MiB = 1024 * 1024
MARKER = b"c2d-marker-9d41e0-must-not-be-stored"


def run_until_exited(sandbox: Sandbox, spec: SandboxSpec) -> None:
    ex = sandbox.executor
    ex.prepare(spec)
    ex.start(spec)
    while ex.wait(spec.job_id) is State.RUNNING:
        pass


def assert_rejected(result: RunResult, reason: str) -> None:
    assert result.rejected
    assert not result.succeeded
    assert result.outputs == ()
    assert result.reason.startswith(reason), result.reason


def test_symlink_to_a_data_file_is_refused(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "os.symlink('/data/ds/secret.csv', '/outputs/model.pkl')", outputs=["model.pkl"]
    )
    assert_rejected(result, "output rejected: model.pkl is a symlink")
    assert not sandbox.store_holds(SECRET)


def test_symlinked_folder_to_the_data_is_refused(sandbox: Sandbox) -> None:
    result = sandbox.run("os.symlink('/data/ds', '/outputs/sub')", outputs=["sub/secret.csv"])
    assert_rejected(result, "output rejected: sub is a symlink")
    assert not sandbox.store_holds(SECRET)


def test_hard_links_cannot_reach_data_and_are_refused(sandbox: Sandbox) -> None:
    script = f"""
link_data = attempt(lambda: os.link('/data/ds/secret.csv', '/outputs/model.pkl'))
with open('/outputs/model.pkl', 'wb') as f:
    f.write({MARKER!r})
link_alias = attempt(lambda: os.link('/outputs/model.pkl', '/outputs/alias.pkl'))
report(link_data=link_data, link_alias=link_alias)
"""
    result = sandbox.run(script, outputs=["model.pkl"])
    seen = reported(result)
    assert seen["link_data"] == "EXDEV"  # /outputs is its own filesystem
    assert not sandbox.store_holds(SECRET)
    assert not sandbox.store_holds(MARKER)
    assert seen["link_alias"] == "ok"  # a hard link inside /outputs can be made...
    assert_rejected(result, "output rejected: model.pkl is a hard link (the file has 2 names)")


@pytest.mark.timeout(120)
def test_fifo_does_not_hang_the_collector(sandbox: Sandbox) -> None:
    result = sandbox.run("os.mkfifo('/outputs/model.pkl')", outputs=["model.pkl"])
    if sandbox.runtime == "runc":
        assert_rejected(result, "output rejected: model.pkl is a fifo")
    else:  # gVisor keeps a fifo inside the sandbox: the host never sees one at all
        assert_rejected(result, "output rejected: model.pkl was declared but not written")


def test_ten_times_the_output_limit_fails_and_the_disk_holds_the_limit(
    sandbox: Sandbox,
) -> None:
    limit = 1 * MiB
    script = """
chunk = b"\\xa5" * 65536
with open('/outputs/model.pkl', 'wb') as f:
    for _ in range(160):  # 10 MiB
        f.write(chunk)
"""
    spec = sandbox.spec(
        script, outputs=["model.pkl"], limits=dataclasses.replace(SMALL, outputs_bytes=limit)
    )
    run_until_exited(sandbox, spec)
    image = job_dir(sandbox.executor.work_root, spec.job_id).image
    st = image.stat()
    assert st.st_size == limit
    assert (
        st.st_blocks * 512 <= limit + 64 * 1024
    )  # the bound stated in runner.host.sandbox.workdir
    result = sandbox.executor.collect(spec, sandbox.store)
    sandbox.executor.cleanup(spec.job_id)
    assert not result.succeeded
    assert result.reason == (
        "/outputs was full (limit 1 MiB): the job tried to write more than its output limit, so "
        "its outputs may be cut short (exited with code 1)"
    )
    assert list(sandbox.stored_files()) == []
    assert not image.exists()


def test_sparse_file_past_the_limit_is_refused(sandbox: Sandbox) -> None:
    script = "os.truncate(os.open('/outputs/model.pkl', os.O_CREAT | os.O_WRONLY), 10 * 2**20)"
    result = sandbox.run(
        script, outputs=["model.pkl"], limits=dataclasses.replace(SMALL, outputs_bytes=MiB)
    )
    assert_rejected(result, "output rejected: model.pkl is 10485760 bytes, over the per-file limit")
    assert list(sandbox.stored_files()) == []


def test_log_flood_keeps_one_mebibyte(sandbox: Sandbox) -> None:
    script = """
import sys
line = b"x" * (2**20 - 1) + b"\\n"
for _ in range(1024):  # 1 GiB
    sys.stdout.buffer.write(line)
sys.stdout.buffer.write(b"END\\n")
"""
    spec = sandbox.spec(script)
    run_until_exited(sandbox, spec)
    container = sandbox.client.containers.get(f"c2d-job-{spec.job_id}")
    docker_log = Path(container.attrs["LogPath"])
    on_disk = sum(p.stat().st_size for p in docker_log.parent.glob(docker_log.name + "*"))
    assert on_disk <= 2 * (SMALL.log_bytes // 2 + 64 * 1024)
    result = sandbox.executor.collect(spec, sandbox.store)
    sandbox.executor.cleanup(spec.job_id)
    assert result.succeeded
    assert len(result.log) <= SMALL.log_bytes + 200
    if sandbox.runtime == "runc":
        total = 2**30 + len(b"END\n")  # exact: the tap saw every byte
        assert result.log_truncated
        assert f"log truncated: {total - SMALL.log_bytes} bytes dropped here".encode() in result.log
        assert f"of {total} bytes]".encode() in result.log
        assert result.log.endswith(b"END\n")
    # Under gVisor output the engine never received is lost in the sandbox: nothing to count.


def test_undeclared_outputs_are_ignored(sandbox: Sandbox) -> None:
    script = f"""
open('/outputs/model.pkl', 'wb').write(b'model')
open('/outputs/notes.txt', 'wb').write({MARKER!r})
os.mkdir('/outputs/scratch')
open('/outputs/scratch/cache.bin', 'wb').write({MARKER!r})
"""
    result = sandbox.run(script, outputs=["model.pkl"])
    assert result.succeeded, result.reason
    assert [o.name for o in result.outputs] == ["model.pkl"]
    assert result.ignored == ("notes.txt", "scratch/cache.bin")
    assert not sandbox.store_holds(MARKER)


BAD_METRICS = {
    "nested": ('{"acc": {"train": 0.9}}', "has an object as the value of 'acc'"),
    "NaN": ('{"acc": NaN}', "holds NaN, which is not a finite number"),
    "string": ('{"acc": "0.9"}', "has a string as the value of 'acc'"),
    "bool": ('{"converged": true}', "has the boolean true as the value of 'converged'"),
    "too many keys": (json.dumps({f"m{i}": i for i in range(1001)}), "has 1001 keys"),
    "not JSON": ("acc: 0.9", "is not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_METRICS))
def test_malformed_metrics_fail_the_job(sandbox: Sandbox, case: str) -> None:
    text, expected = BAD_METRICS[case]
    script = """
text = json.load(open('/job/params.json'))['metrics']
open('/outputs/model.pkl', 'w').write('model')
open('/outputs/metrics.json', 'w').write(text)
"""
    result = sandbox.run(script, outputs=["model.pkl"], params={"metrics": text})
    assert_rejected(result, "output rejected: metrics.json ")
    assert expected in result.reason
    assert list(sandbox.stored_files()) == []


TRAIN = """
import hashlib, json
import numpy as np, skops.io
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(7)
X = rng.normal(size=(400, 4))
y = (X[:, 0] - X[:, 2] > 0).astype(int)
model = LogisticRegression().fit(X[:300], y[:300])
skops.io.dump(model, '/outputs/model.skops')
acc = float(model.score(X[300:], y[300:]))
json.dump({"accuracy": acc, "n_train": 300}, open('/outputs/metrics.json', 'w'))
report(model_sha256=hashlib.sha256(open('/outputs/model.skops', 'rb').read()).hexdigest())
"""


def test_a_good_job_lands_model_and_metrics_in_the_store(sandbox: Sandbox) -> None:
    result = sandbox.run(TRAIN, outputs=["model.skops"])
    assert result.succeeded, result.reason
    assert result.reason == "exited with code 0"
    assert [o.name for o in result.outputs] == ["metrics.json", "model.skops"]
    for output in result.outputs:
        data = sandbox.store.path(output.sha256).read_bytes()
        assert output.sha256 == "sha256:" + hashlib.sha256(data).hexdigest()
        assert output.bytes == len(data)
    model = result.outputs[1]
    assert model.sha256 == "sha256:" + reported(result)["model_sha256"]
    assert result.metrics is not None
    assert result.metrics["n_train"] == 300
    assert result.metrics["accuracy"] > 0.8
