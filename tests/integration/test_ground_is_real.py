"""The ground under c2d is real: a locked-down container trains a model we can load here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skops.io

pytestmark = pytest.mark.docker

TRAIN = """
import numpy as np, skops.io
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = rng.normal(size=(200, 3))
y = (X[:, 0] + X[:, 1] > 0).astype(int)
skops.io.dump(LogisticRegression().fit(X, y), "/outputs/model.skops")
"""


def locked_down(docker_client, image, code: str, labels, volumes=None) -> str:  # type: ignore[no-untyped-def]
    """Run `python3 -c code` with no network, a read-only root, no capabilities, as nobody."""
    return docker_client.containers.run(
        image,
        ["python3", "-c", code],
        network_mode="none",
        read_only=True,
        cap_drop=["ALL"],
        user="65534:65534",
        volumes=volumes or {},
        labels=labels,
        remove=True,
    ).decode()


def test_model_trained_in_locked_down_container_loads_here(
    docker_client, job_image, test_labels, tmp_path: Path
) -> None:
    out = tmp_path / "outputs"
    out.mkdir()
    out.chmod(0o777)  # the job runs as an unprivileged uid
    locked_down(
        docker_client, job_image, TRAIN, test_labels, {str(out): {"bind": "/outputs", "mode": "rw"}}
    )
    path = out / "model.skops"
    model = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    X = np.array([[2.0, 2.0, 0.0], [-2.0, -2.0, 0.0]])
    assert list(model.predict(X)) == [1, 0]


def test_container_cannot_write_its_root_or_reach_a_network(
    docker_client, job_image, test_labels
) -> None:
    probe = (
        "import socket, sys\n"
        "try:\n    open('/x', 'w')\nexcept OSError as e:\n    print('rofs', e.errno)\n"
        "s = socket.socket()\ns.settimeout(2)\n"
        "try:\n    s.connect(('1.1.1.1', 80))\nexcept OSError as e:\n    print('nonet', e.errno)\n"
    )
    out = locked_down(docker_client, job_image, probe, test_labels)
    assert "rofs 30" in out  # EROFS
    assert "nonet 101" in out  # ENETUNREACH: no route exists at all


READ_PARQUET = """
import json, pandas as pd
frame = pd.read_parquet("/data/t.parquet")
print(json.dumps({"dtypes": {c: str(t) for c, t in frame.dtypes.items()},
                  "rows": len(frame), "sum": float(frame["x"].sum()),
                  "cats": sorted(frame["c"].cat.categories)}))
"""


def test_a_parquet_table_written_here_reads_the_same_in_the_job_image(
    docker_client, job_image, test_labels, tmp_path: Path
) -> None:
    """Parquet datasets and their mocks are written on the host and read inside the job."""
    import json

    import pandas as pd

    data = tmp_path / "data"
    data.mkdir()
    frame = pd.DataFrame(
        {
            "x": np.arange(1000, dtype="float64") / 7,
            "c": pd.Categorical(["a", "b"] * 500),
            "when": pd.date_range("2024-01-01", periods=1000, freq="h"),
        }
    )
    frame.to_parquet(data / "t.parquet")
    (data / "t.parquet").chmod(0o644)
    volumes = {str(data): {"bind": "/data", "mode": "ro"}}
    inside = json.loads(locked_down(docker_client, job_image, READ_PARQUET, test_labels, volumes))
    assert inside == {
        "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
        "rows": 1000,
        "sum": float(frame["x"].sum()),
        "cats": ["a", "b"],
    }
