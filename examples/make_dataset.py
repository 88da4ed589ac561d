"""Make a synthetic "private" dataset of patient-like records for trying c2d.

    python examples/make_dataset.py OUT_DIR [--rows 5000] [--seed 7]

Writes OUT_DIR/patients.csv. Every value is drawn from a seeded random generator: no real
person is in it. `diabetes` depends on glucose, BMI and age, and `systolic_bp` on age, BMI and
smoking, so the example jobs have something to learn. Files are made world-readable because
jobs run as an unprivileged uid that must be able to read the data (read-only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def make_patients(rows: int, seed: int) -> pd.DataFrame:
    """Return `rows` synthetic patient records; the same seed gives the same frame."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, rows)
    sex = rng.choice(["F", "M"], rows)
    bmi = np.round(rng.normal(27, 5, rows).clip(15, 55), 1)
    smoker = rng.random(rows) < 0.2
    glucose = np.round(rng.normal(100, 25, rows).clip(50, 300) + 0.4 * (bmi - 27), 1)
    systolic = np.round(
        95 + 0.5 * age + 0.8 * (bmi - 27) + 6 * smoker + rng.normal(0, 8, rows)
    ).astype(int)
    risk = 0.06 * (glucose - 110) + 0.12 * (bmi - 28) + 0.03 * (age - 50)
    diabetes = (rng.random(rows) < 1 / (1 + np.exp(-risk))).astype(int)
    return pd.DataFrame(
        {
            "patient_id": [f"P{n:07d}" for n in rng.permutation(rows) + 1],
            "age": age,
            "sex": sex,
            "bmi": bmi,
            "smoker": smoker.astype(int),
            "glucose": glucose,
            "systolic_bp": systolic,
            "diabetes": diabetes,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write patients.csv into")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "patients.csv"
    make_patients(args.rows, args.seed).to_csv(path, index=False)
    args.out.chmod(0o755)
    path.chmod(0o644)
    print(path)


if __name__ == "__main__":
    main()
