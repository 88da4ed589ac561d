"""docker-compose.yml as an operator runs it, and one job through it with the CLI from the host.

The module's stack is built and started once: `compose_image.sh` (the app image; cached after
the first run), `compose_host.sh prepare` (state folder and datasets root), then
`docker-compose up -d` under a project name of its own, with its own state folder, datasets
root and API port. The tests then talk to it as people do: the host's `c2d` console script
against the published port. At the end everything the module made is removed, on failure too:
the compose project with its volumes and network, any job container of its jobs, mounts left
under its state folder, and its folders. The images stay (they are the build cache).

Needs root (mounts), the Docker engine, the job image (`make image`) and docker-compose
(`make services`); skips without them on a laptop and fails when CI is set.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import pandas as pd
import pytest
import skops.io

from tests.kit.procs import free_port

REPO = Path(__file__).resolve().parents[2]
C2D = Path(sys.executable).with_name("c2d")
SCRIPTS = REPO / "runner" / "scripts"
APP_IMAGE = "c2d/app:latest"
BUILD_S = 900.0  # a cold build bootstraps a Debian base and fetches the wheels
UP_S = 180.0
JOB_S = 300.0
COMMAND_S = 120.0
FINAL = {"succeeded", "failed", "released", "rejected", "cancelled"}

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(BUILD_S + 600)]


def _missing(what: str, how: str) -> None:
    """Skip on a laptop, fail when CI is set (as tests/conftest.py's fixtures do)."""
    message = f"{what} is missing; run `{how}` first"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class ComposeStack:
    """One compose project: its folders, environment, API URL, and what the tests made in it."""

    project: str
    root: Path
    port: int
    admin_token: str = ""
    job_ids: list[str] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """docker-compose's and the scripts' environment: the compose file's settings only."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("C2D_", "COMPOSE_"))}
        env.update(
            {
                "C2D_STATE_DIR": str(self.state),
                "C2D_DATASETS_DIR": str(self.datasets),
                "C2D_API_PORT": str(self.port),
                "C2D_APP_IMAGE": APP_IMAGE,
                "C2D_ORIGIN": f"c2d.compose-test/{self.project}",
                "C2D_PYTHON": sys.executable,
            }
        )
        return env

    def compose(
        self, *args: str, timeout: float = UP_S, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `docker-compose -p PROJECT -f docker-compose.yml ARGS`."""
        done = subprocess.run(
            ["docker-compose", "-p", self.project, "-f", str(REPO / "docker-compose.yml"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert done.returncode == 0, (
                f"docker-compose {' '.join(args)} exited {done.returncode}:\n"
                f"{tail(done.stdout)}\n{tail(done.stderr)}\n{self.logs()}"
            )
        return done

    def logs(self) -> str:
        """The last lines of every service's log, for assertion messages."""
        done = subprocess.run(
            ["docker-compose", "-p", self.project, "-f", str(REPO / "docker-compose.yml"),
             "logs", "--no-color", "--tail", "40"],
            env=self.env(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return f"--- compose logs:\n{done.stdout}{done.stderr}"

    def container(self, service: str) -> Any:
        """The container of `service` (docker SDK object)."""
        client = docker.from_env()
        try:
            found = client.containers.list(
                all=True,
                filters={
                    "label": [
                        f"com.docker.compose.project={self.project}",
                        f"com.docker.compose.service={service}",
                        "com.docker.compose.oneoff=False",
                    ]
                },
            )
            assert len(found) == 1, f"{service}: {len(found)} containers\n{self.logs()}"
            return found[0]
        finally:
            client.close()

    def c2d(self, *args: str, token: str | None = None, expect: int = 0) -> Any:
        """Run `c2d ARGS --json` on the host as a person holding `token`; return its document."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("C2D_")}
        env.update({"C2D_URL": self.url, "C2D_CONFIG": str(self.root / "no-client-config.json")})
        if token is not None:
            env["C2D_TOKEN"] = token
        done = subprocess.run(
            [str(C2D), *args, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == expect, (
            f"c2d {' '.join(args)} exited {done.returncode}, expected {expect}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}\n{self.logs()}"
        )
        return json.loads(done.stdout)

    def mounts_under_state(self) -> list[str]:
        """Mount points at or below the state folder in the host's mount table (not itself)."""
        prefix = f"{self.state}/"
        with open("/proc/self/mountinfo") as table:
            return [f.split()[4] for f in table if f.split()[4].startswith(prefix)]


def _script(stack: ComposeStack, name: str, *args: str, timeout: float) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPTS / name), *args],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{name} {' '.join(args)} failed:\n{tail(done.stderr, 80)}"
    return done.stdout


def _wait_up(stack: ComposeStack) -> None:
    """Until the API answers on the host's loopback and every long-running service is healthy."""
    deadline = time.monotonic() + UP_S
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        health = {
            s: stack.container(s).attrs["State"].get("Health", {}).get("Status", "none")
            for s in ("redis", "worker", "api")
        }
        if set(health.values()) == {"healthy"}:
            try:
                if httpx.get(f"{stack.url}/v1/health", timeout=3).json().get("ok") is True:
                    return
            except (httpx.HTTPError, ValueError):
                pass
        time.sleep(1)
    pytest.fail(f"the stack did not come up in {UP_S:.0f} s: {health}\n{stack.logs()}")


def _tear_down(stack: ComposeStack) -> None:
    """Remove everything the module made; every step runs even if an earlier one failed."""
    problems: list[str] = []
    done = stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False)
    if done.returncode != 0:
        problems.append(f"docker-compose down: {done.stderr}")
    client = docker.from_env()
    try:
        for container in client.containers.list(all=True, filters={"label": "c2d.job"}):
            if container.labels.get("c2d.job") in stack.job_ids:
                container.remove(force=True)
    finally:
        client.close()
    released = subprocess.run(
        ["bash", str(SCRIPTS / "compose_host.sh"), "release"],
        env=stack.env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if released.returncode != 0:
        problems.append(f"compose_host.sh release: {released.stderr}")
    if stack.mounts_under_state() or os.path.ismount(stack.state):
        problems.append(f"mounts left under {stack.state}; not deleting it")
    else:
        shutil.rmtree(stack.root, ignore_errors=True)
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def stack(docker_client: Any, job_image: str) -> Iterator[ComposeStack]:
    """The compose stack of this module, up and healthy, with a dataset folder made."""
    if shutil.which("docker-compose") is None:
        _missing("docker-compose", "make services")
    if os.geteuid() != 0:
        _missing("root (the stack's worker loop-mounts job outputs)", "sudo make test")
    root = Path(tempfile.mkdtemp(prefix="c2d-compose-", dir="/var/tmp"))
    stack = ComposeStack(project=f"c2dtest{uuid.uuid4().hex[:10]}", root=root, port=free_port())
    try:
        _script(stack, "compose_image.sh", timeout=BUILD_S)
        _script(stack, "compose_host.sh", "prepare", timeout=60)
        stack.datasets.chmod(0o755)
        subprocess.run(
            [sys.executable, str(REPO / "examples" / "make_dataset.py"),
             str(stack.datasets / "patients"), "--rows", "600"],
            check=True, capture_output=True, timeout=COMMAND_S,
        )  # fmt: skip
        stack.compose("up", "--detach", "--no-build")
        _wait_up(stack)
        stack.admin_token = (stack.state / "initial-admin-token").read_text().strip()
        yield stack
    finally:
        _tear_down(stack)


def test_the_stack_comes_up_initialised_with_the_api_on_loopback_only(
    stack: ComposeStack, job_image: str
) -> None:
    # `c2d init` ran once in the init service and handed the admin token over in a root-only file.
    init = stack.container("init")
    assert init.attrs["State"]["ExitCode"] == 0
    token_file = stack.state / "initial-admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(stack.state.stat().st_mode) == 0o700
    assert (stack.state / "c2d.db").is_file()
    # The admin token works, and the API, which has no engine socket, still sees the job
    # environment's image through the worker's engine proxy.
    envs = {e["name"]: e for e in stack.c2d("env", "list", token=stack.admin_token)}
    assert envs["python-ml"]["image_id"] == job_image

    # The API is published on the host's loopback only; Redis is not published at all.
    api_ports = stack.container("api").attrs["NetworkSettings"]["Ports"]["8700/tcp"]
    assert {p["HostIp"] for p in api_ports} == {"127.0.0.1"}
    assert {p["HostPort"] for p in api_ports} == {str(stack.port)}
    assert not any(stack.container("redis").attrs["NetworkSettings"]["Ports"].values())


def test_redis_asks_for_the_password_that_prepare_wrote(stack: ComposeStack) -> None:
    env_file = stack.state / "redis.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    password = values["C2D_REDIS_PASSWORD"]
    assert len(password) == 64
    assert values["C2D_REDIS_URL"] == f"redis://:{password}@redis:6379/0"
    # Without the password Redis answers nothing; with it (REDISCLI_AUTH, from the file) PONG.
    anonymous = stack.compose(
        "exec", "-T", "-e", "REDISCLI_AUTH=", "redis", "redis-cli", "ping", check=False
    )
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    assert stack.compose("exec", "-T", "redis", "redis-cli", "ping").stdout.strip() == "PONG"
    # The password is in no process's arguments, where `ps` on the host would show it.
    for service in ("redis", "api", "worker"):
        top = stack.container(service).top(ps_args="-o pid,args")
        assert not any(password in " ".join(p) for p in top["Processes"]), service


def test_a_job_goes_from_the_host_cli_through_the_stack_to_a_loadable_model(
    stack: ComposeStack, tmp_path: Path
) -> None:
    owner = stack.c2d("user", "add", "olga", "--role", "owner", token=stack.admin_token)
    researcher = stack.c2d("user", "add", "rita", "--role", "researcher", token=stack.admin_token)
    owner_token, researcher_token = owner["token"], researcher["token"]

    # The owner registers a folder under the datasets root by its host path; the API, in its
    # container, hashes it at the same path.
    dataset = stack.c2d(
        "dataset", "add", "patients", str(stack.datasets / "patients"), "--review-outputs",
        token=owner_token,
    )  # fmt: skip
    assert dataset["files"] == 1
    assert dataset["digest"].startswith("sha256:")

    # The researcher submits the example from the host; the API resolves the environment
    # through the worker's engine proxy.
    submitted = stack.c2d(
        "submit", str(REPO / "examples" / "jobs" / "diabetes-classifier"), "--dataset",
        "patients", token=researcher_token,
    )  # fmt: skip
    job_id = submitted["id"]
    stack.job_ids.append(job_id)
    assert submitted["state"] == "pending"
    approved = stack.c2d("approve", job_id, token=owner_token)
    assert approved["state"] in {"approved", "running", "succeeded"}

    # The worker runs it on the host's engine: dataset, code and the loop-mounted /outputs are
    # bound by their host paths. An /outputs mount that did not reach the host would leave
    # the job's writes outside the filesystem the collector reads, and the job would fail.
    deadline = time.monotonic() + JOB_S
    job = approved
    while time.monotonic() < deadline and job["state"] not in FINAL:
        time.sleep(1)
        job = stack.c2d("status", job_id, token=researcher_token)
    if job["state"] != "succeeded":
        log = stack.c2d("logs", job_id, token=owner_token)
        pytest.fail(f"job {job_id} ended {job['state']}: {job}\n{log}\n{stack.logs()}")
    released = stack.c2d("release", job_id, token=owner_token)
    assert released["state"] == "released"

    # The researcher fetches; fetch checks every digest and the receipt against the key the
    # init service made in the state folder.
    out = tmp_path / "result"
    fetched = stack.c2d(
        "fetch", job_id, "-o", str(out), "--key", str(stack.state / "ledger.key.pub"),
        token=researcher_token,
    )  # fmt: skip
    assert fetched["verified"] is True
    assert {f["name"] for f in fetched["files"]} == {"model.skops", "metrics.json"}

    model_path = out / "model.skops"
    model = skops.io.load(model_path, trusted=skops.io.get_untrusted_types(file=model_path))
    data = pd.read_csv(stack.datasets / "patients" / "patients.csv")
    features = ["age", "bmi", "smoker", "glucose", "systolic_bp"]
    predictions = model.predict(data[features])
    assert set(predictions) <= {0, 1}
    accuracy = float((predictions == data["diabetes"]).mean())
    assert accuracy > 0.6
    assert abs(accuracy - fetched["metrics"]["accuracy"]) < 0.25

    # The ledger the containers wrote verifies with the host's c2d, straight from the folder.
    local = stack.c2d(
        "ledger", "verify", "--home", str(stack.state), "--key",
        str(stack.state / "ledger.key.pub"),
    )  # fmt: skip
    assert local["ok"] is True

    # The worker's unmount of the job's /outputs reached the host too: nothing stays mounted.
    deadline = time.monotonic() + 60
    while stack.mounts_under_state() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stack.mounts_under_state() == [], stack.logs()


def test_only_the_worker_holds_the_engine_socket_and_the_api_can_only_inspect_images(
    stack: ComposeStack, docker_client: Any
) -> None:
    def engine_socket_mounted(service: str) -> bool:
        mounts = stack.container(service).attrs["Mounts"]
        return any(m["Destination"] == "/var/run/docker.sock" for m in mounts) or any(
            m["Source"].endswith("docker.sock") and "c2d-engine" not in m["Source"] for m in mounts
        )

    assert engine_socket_mounted("worker")
    for service in ("api", "redis", "init"):
        assert not engine_socket_mounted(service), service

    # From inside the API container, through its only way to the engine: inspecting the job
    # image works; creating a container (the attack) is refused and nothing is created.
    probe = f"c2d-compose-probe-{uuid.uuid4().hex[:8]}"
    script = (
        "import json, docker\n"
        "c = docker.from_env()\n"
        "out = {'image': c.images.get('c2d/python-ml:latest').id}\n"
        "try:\n"
        f"    c.containers.create('c2d/python-ml:latest', 'true', name={probe!r})\n"
        "    out['create'] = 'created'\n"
        "except docker.errors.APIError as e:\n"
        "    out['create'] = e.status_code\n"
        "try:\n"
        "    c.containers.list()\n"
        "    out['list'] = 'listed'\n"
        "except docker.errors.APIError as e:\n"
        "    out['list'] = e.status_code\n"
        "print(json.dumps(out))\n"
    )
    done = stack.compose("exec", "-T", "api", "python3", "-c", script, timeout=COMMAND_S)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["image"] == docker_client.images.get("c2d/python-ml:latest").id
    assert seen["create"] == 403
    assert seen["list"] == 403
    assert docker_client.containers.list(all=True, filters={"name": probe}) == []


def test_init_again_leaves_the_installation_as_it_is(stack: ComposeStack) -> None:
    key = (stack.state / "ledger.key").read_bytes()
    token = (stack.state / "initial-admin-token").read_bytes()
    done = stack.compose("run", "--rm", "init", timeout=COMMAND_S)
    assert "already holds a c2d installation" in done.stderr + done.stdout
    assert (stack.state / "ledger.key").read_bytes() == key
    assert (stack.state / "initial-admin-token").read_bytes() == token
    assert stack.c2d("env", "list", token=stack.admin_token)
