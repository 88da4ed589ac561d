"""Train a random forest for `diabetes` on /data/*/patients.csv; write model and metrics."""

import json
from pathlib import Path

import pandas as pd
import skops.io
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

FEATURES = ["age", "bmi", "smoker", "glucose", "systolic_bp"]

params = json.loads(Path("/job/params.json").read_text())
table = next(Path("/data").glob("*/patients.csv"))  # the one dataset mounted for this job
data = pd.read_csv(table)
X_train, X_test, y_train, y_test = train_test_split(
    data[FEATURES], data["diabetes"],
    test_size=params["test_size"], random_state=params["seed"], stratify=data["diabetes"],
)  # fmt: skip
model = RandomForestClassifier(
    n_estimators=params["n_estimators"], max_depth=params["max_depth"],
    random_state=params["seed"], n_jobs=1,
).fit(X_train, y_train)  # fmt: skip

metrics = {
    "accuracy": accuracy_score(y_test, model.predict(X_test)),
    "roc_auc": roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]),
    "train_rows": len(X_train),
    "test_rows": len(X_test),
}
skops.io.dump(model, "/outputs/model.skops")
Path("/outputs/metrics.json").write_text(json.dumps(metrics))
print(f"trained on {len(X_train)} rows; held-out accuracy {metrics['accuracy']:.3f}")
