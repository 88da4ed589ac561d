"""JobSpec from job.yaml: defaults, units, and errors that name file, field and what is allowed."""

import pytest

from jobs.errors import SpecError
from jobs.spec import JobSpec, Resources

GOOD = """
name: iris-train
command: [python, train.py]
dataset: iris
params: {epochs: 3, lr: 0.1}
resources: {cpus: 0.5, memory: 512MiB, timeout: 1h30m, outputs: 10MB}
outputs: [model.skops, "plots/*.png"]
"""


def write(tmp_path, text):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return path


def test_reads_a_full_spec(tmp_path):
    spec = JobSpec.from_yaml(write(tmp_path, GOOD))
    assert spec.name == "iris-train"
    assert spec.environment == "python-ml"
    assert spec.command == ["python", "train.py"]
    assert spec.params == {"epochs": 3, "lr": 0.1}
    assert spec.resources == Resources(cpus=0.5, memory=512 * 1024**2, timeout=5400, outputs=10**7)
    assert spec.resources.human() == {
        "cpus": "0.5",
        "memory": "512MiB",
        "timeout": "1h30m",
        "outputs": "10MB",
    }
    assert spec.output_patterns() == ["model.skops", "plots/*.png", "metrics.json"]


def test_defaults(tmp_path):
    spec = JobSpec.from_yaml(write(tmp_path, "name: a\ncommand: [python, a.py]\n"))
    assert spec.resources.human() == {
        "cpus": "1",
        "memory": "1GiB",
        "timeout": "10m",
        "outputs": "100MiB",
    }
    assert spec.dataset is None
    assert spec.outputs == []
    assert spec.output_patterns() == ["metrics.json"]


def test_json_round_trip_and_frozen(tmp_path):
    spec = JobSpec.from_yaml(write(tmp_path, GOOD))
    assert JobSpec.model_validate_json(spec.model_dump_json()) == spec
    with pytest.raises(Exception, match="frozen"):
        spec.name = "other"  # type: ignore[misc]


def test_overrides_give_a_validated_copy(tmp_path):
    spec = JobSpec.from_yaml(write(tmp_path, GOOD))
    other = spec.with_overrides(dataset="iris2", params={"lr": 0.5, "seed": 1})
    assert other.dataset == "iris2"
    assert other.params == {"epochs": 3, "lr": 0.5, "seed": 1}
    assert spec.params == {"epochs": 3, "lr": 0.1}
    with pytest.raises(SpecError, match="dataset"):
        spec.with_overrides(dataset="../etc")


@pytest.mark.parametrize(
    ("text", "field", "allowed"),
    [
        ("name: a\ncommand: []\n", "command", "non-empty list"),
        ("command: [x]\n", "name", "letters"),
        ("name: a b\ncommand: [x]\n", "name", "letters"),
        ("name: a\ncommand: [x]\nresources: {memory: 1 gigabyte}\n", "resources.memory", "512MiB"),
        ("name: a\ncommand: [x]\nresources: {memory: 1MiB}\n", "resources.memory", "16MiB"),
        ("name: a\ncommand: [x]\nresources: {timeout: soon}\n", "resources.timeout", "1h30m"),
        ("name: a\ncommand: [x]\nresources: {cpus: 0}\n", "resources.cpus", "above 0"),
        ("name: a\ncommand: [x]\nresources: {gpus: 1}\n", "resources.gpus", "cpus, memory"),
        ("name: a\ncommand: [x]\nextra: 1\n", "extra", "name, environment"),
        ("name: a\ncommand: [x]\noutputs: [../x]\n", "outputs[0]", "without '..'"),
        ("name: a\ncommand: [x]\noutputs: [/etc/passwd]\n", "outputs[0]", "relative"),
        ("name: a\ncommand: [x]\noutputs: [a, a]\n", "outputs", "relative"),
        ("name: a\ncommand: [x]\nparams: [1, 2]\n", "params", "JSON object"),
        ("name: a\ncommand: [x]\nparams: {when: 2024-01-01}\n", "params", "JSON object"),
        ("name: a\ncommand: [x]\nparams: {x: .nan}\n", "params", "JSON object"),
        ("name: a\ncommand: [x]\nschema_version: 2\n", "schema_version", "1"),
    ],
)
def test_errors_name_file_field_and_what_is_allowed(tmp_path, text, field, allowed):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        JobSpec.from_yaml(path)
    err = info.value
    assert err.kind == "invalid"
    assert err.file == str(path)
    assert err.field == field
    assert allowed in (err.allowed or "")
    assert str(path) in str(err)
    assert f"  {field}: " in str(err)


def test_every_error_is_listed(tmp_path):
    path = write(tmp_path, "name: a\ncommand: []\noutputs: [/x]\n")
    with pytest.raises(SpecError) as info:
        JobSpec.from_yaml(path)
    assert "  command: " in str(info.value)
    assert "  outputs[0]: " in str(info.value)


def test_yaml_syntax_error_points_at_the_line(tmp_path):
    path = write(tmp_path, "name: a\n  command: [x]\n")
    with pytest.raises(SpecError, match=rf"{path}:2:\d+: not valid YAML"):
        JobSpec.from_yaml(path)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_a_spec_must_be_a_mapping(tmp_path, text):
    with pytest.raises(SpecError, match="expected a mapping"):
        JobSpec.from_yaml(write(tmp_path, text))


def test_missing_file_says_what_a_job_folder_needs(tmp_path):
    with pytest.raises(SpecError, match=r"needs a job\.yaml"):
        JobSpec.from_yaml(tmp_path / "job.yaml")
