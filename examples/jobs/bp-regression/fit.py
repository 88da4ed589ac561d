"""Fit systolic_bp ~ age + bmi + smoker with ridge regression; report cross-validated error."""

import json
from pathlib import Path

import pandas as pd
import skops.io
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_validate

FEATURES = ["age", "bmi", "smoker"]

params = json.loads(Path("/job/params.json").read_text())
data = pd.read_csv(next(Path("/data").glob("*/patients.csv")))
X, y = data[FEATURES], data["systolic_bp"]
model = Ridge(alpha=params["alpha"])
scores = cross_validate(model, X, y, cv=params["folds"], scoring=("r2", "neg_mean_absolute_error"))
model.fit(X, y)

metrics = {
    "r2": float(scores["test_r2"].mean()),
    "mae": float(-scores["test_neg_mean_absolute_error"].mean()),
    "rows": len(data),
    **{f"coef_{name}": float(c) for name, c in zip(FEATURES, model.coef_, strict=True)},
}
skops.io.dump(model, "/outputs/model.skops")
Path("/outputs/metrics.json").write_text(json.dumps(metrics))
print(f"cross-validated R^2 {metrics['r2']:.3f}, MAE {metrics['mae']:.1f} mmHg")
