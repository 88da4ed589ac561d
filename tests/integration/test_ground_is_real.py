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


def test_model_trained_in_locked_down_container_loads_here(
    docker_client, job_image, test_labels, tmp_path: Path
) -> None:
    out = tmp_path / "outputs"
    out.mkdir()
    out.chmod(0o777)  # the job runs as an unprivileged uid
    docker_client.containers.run(
        job_image,
        ["python3", "-c", TRAIN],
        network_mode="none",
        read_only=True,
        cap_drop=["ALL"],
        user="65534:65534",
        volumes={str(out): {"bind": "/outputs", "mode": "rw"}},
        labels=test_labels,
        remove=True,
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
    out = docker_client.containers.run(
        job_image,
        ["python3", "-c", probe],
        network_mode="none",
        read_only=True,
        user="65534:65534",
        labels=test_labels,
        remove=True,
    ).decode()
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
    out = docker_client.containers.run(
        job_image,
        ["python3", "-c", READ_PARQUET],
        network_mode="none",
        read_only=True,
        cap_drop=["ALL"],
        user="65534:65534",
        volumes={str(data): {"bind": "/data", "mode": "ro"}},
        labels=test_labels,
        remove=True,
    ).decode()
    inside = json.loads(out)
    assert inside == {
        "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
        "rows": 1000,
        "sum": float(frame["x"].sum()),
        "cats": ["a", "b"],
    }
