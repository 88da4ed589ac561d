"""docker-compose.yml as an operator runs it: a control plane and two data hosts, host-a and
host-b, each running a job on its own dataset, driven by the machine's `c2d` CLI.

The module's stack is built and started once, as the README says: `compose_image.sh` (the app
image; cached after the first run), `compose_host.sh prepare` (state folders, datasets folders,
Redis password), `docker-compose up -d` under a project name of its own with its own folders
and API port; then the admin adds the two hosts with the machine's `c2d` and pipes each
enrollment token to `compose_host.sh enroll SERVICE`. Owners register datasets with `c2d`
inside each host's container (`docker-compose exec`); researchers and owners use the machine's
`c2d` against the published port. At the end everything the module made is removed, on failure
too: the compose project with its volumes and network, any job container of its jobs, mounts
left under the hosts' state folders, its folders and its own tag of the app image. The images
stay (they are the build cache, tagged c2d/app:compose-test).

Needs root (mounts), the Docker engine, the job image (`make image`) and docker-compose
(`make services`); skips without them on a laptop and fails when CI is set.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
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
# The app image as compose_image.sh tags it for these tests: `make compose-image` tags
# c2d/app:latest, which an operator's stack on this machine may be using.
BUILD_TAG = "c2d/app:compose-test"
BUILD_S = 900.0  # a cold build bootstraps a Debian base and fetches the wheels
UP_S = 180.0
JOB_S = 300.0
COMMAND_S = 120.0
FINAL = {"succeeded", "failed", "released", "rejected", "cancelled"}
# The compose file's data host services, and the names the admin enrolls them under (a host's
# name comes with its token, not from the compose file).
HOSTS = {"host-a": "hospital-a", "host-b": "hospital-b"}
# Each host's dataset: (name, rows, seed); different data on each.
DATASETS = {"host-a": ("patients", 600, 7), "host-b": ("clinic", 700, 11)}
FEATURES = ["age", "bmi", "smoker", "glucose", "systolic_bp"]

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(BUILD_S + 900)]


def _missing(what: str, how: str) -> None:
    """Skip on a laptop, fail when CI is set (as tests/conftest.py's fixtures do)."""
    message = f"{what} is missing; run `{how}` first"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _var(service: str, kind: str) -> str:
    """docker-compose.yml's variable for a data host's folder: C2D_HOST_A_STATE_DIR, say."""
    return f"C2D_{service.upper().replace('-', '_')}_{kind}_DIR"


@dataclass
class ComposeStack:
    """One compose project: its folders, environment, API URL, and what the tests made in it."""

    project: str
    root: Path
    port: int
    image: str = ""
    admin_token: str = ""
    job_ids: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # jobs' own images the hosts built
    _host_logins: set[tuple[str, str]] = field(default_factory=set)  # (service, config)

    @property
    def state(self) -> Path:
        """The control plane's state folder."""
        return self.root / "control"

    def host_state(self, service: str) -> Path:
        return self.root / service / "state"

    def host_datasets(self, service: str) -> Path:
        return self.root / service / "datasets"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """docker-compose's and the scripts' environment: the compose file's settings only."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("C2D_", "COMPOSE_"))}
        env.update(
            {
                "C2D_STATE_DIR": str(self.state),
                "C2D_API_PORT": str(self.port),
                "C2D_APP_IMAGE": self.image or BUILD_TAG,
                "C2D_ORIGIN": f"c2d.compose-test/{self.project}",
                "C2D_PYTHON": sys.executable,
            }
        )
        for service in HOSTS:
            env[_var(service, "STATE")] = str(self.host_state(service))
            env[_var(service, "DATASETS")] = str(self.host_datasets(service))
        return env

    def compose(
        self,
        *args: str,
        timeout: float = UP_S,
        check: bool = True,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `docker-compose -p PROJECT -f docker-compose.yml ARGS` (``stdin`` piped in)."""
        done = subprocess.run(
            ["docker-compose", "-p", self.project, "-f", str(REPO / "docker-compose.yml"), *args],
            env={**self.env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
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

    def health(self, service: str) -> str:
        return str(self.container(service).attrs["State"].get("Health", {}).get("Status", "none"))

    def _login(self, token: str) -> Path:
        """The client config of the person holding ``token``, who logs in on first use: `c2d
        login` makes their signing key and registers it (the installation takes only signed
        actions, its default), as each person does on their own machine."""
        config = self.root / "people" / hashlib.sha256(token.encode()).hexdigest()[:16] / "c.json"
        if not config.exists():
            config.parent.mkdir(parents=True, mode=0o700)
            env = {k: v for k, v in os.environ.items() if not k.startswith("C2D_")}
            done = subprocess.run(
                [str(C2D), "login", self.url, "--with-token"],
                env={**env, "C2D_CONFIG": str(config)},
                input=token, capture_output=True, text=True, timeout=COMMAND_S, check=False,
            )  # fmt: skip
            assert done.returncode == 0, f"c2d login: {done.stderr}\n{self.logs()}"
        return config

    def c2d(self, *args: str, token: str | None = None, expect: int = 0) -> Any:
        """Run `c2d ARGS --json` on the machine as a person holding `token` (logged in with
        it, so their actions are signed); return its document."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("C2D_")}
        env.update({"C2D_URL": self.url, "C2D_CONFIG": str(self.root / "no-client-config.json")})
        if token is not None:
            env["C2D_TOKEN"] = token
            env["C2D_CONFIG"] = str(self._login(token))
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
        return json.loads(done.stdout) if expect == 0 else done.stderr

    def c2d_on_host(self, service: str, *args: str, token: str, expect: int = 0) -> Any:
        """Run `c2d ARGS --json` inside data host `service`'s container, as a data owner does
        on that machine, logged in there first (so `c2d dataset add` signs her publication with
        a key made in the container); the token goes in the environment (`-e C2D_TOKEN`) or on
        stdin, never in argv."""
        config = f"/tmp/c2d-people/{hashlib.sha256(token.encode()).hexdigest()[:16]}/c.json"
        env = {"C2D_TOKEN": token, "C2D_CONFIG": config}
        if (service, config) not in self._host_logins:
            login = self.compose(
                "exec", "-T", "-e", "C2D_CONFIG", service, "c2d", "login", "http://api:8700",
                "--with-token", timeout=COMMAND_S, check=False, env=env, stdin=token,
            )  # fmt: skip
            assert login.returncode == 0, f"c2d login on {service}: {login.stderr}\n{self.logs()}"
            self._host_logins.add((service, config))
        done = self.compose(
            "exec", "-T", "-e", "C2D_TOKEN", "-e", "C2D_CONFIG", service, "c2d", *args, "--json",
            timeout=COMMAND_S, check=False, env=env,
        )  # fmt: skip
        assert done.returncode == expect, (
            f"c2d {' '.join(args)} on {service} exited {done.returncode}, expected {expect}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}\n{self.logs()}"
        )
        return json.loads(done.stdout) if expect == 0 else done.stderr

    def mounts_under(self, folder: Path) -> list[str]:
        """Mount points below `folder` in the machine's mount table (not itself)."""
        prefix = f"{folder}/"
        with open("/proc/self/mountinfo") as table:
            return [f.split()[4] for f in table if f.split()[4].startswith(prefix)]

    def job_mounts(self) -> list[str]:
        return [m for service in HOSTS for m in self.mounts_under(self.host_state(service))]


def _script(
    stack: ComposeStack, name: str, *args: str, timeout: float, stdin: str | None = None
) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPTS / name), *args],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=stdin if stdin is not None else "",
    )
    assert done.returncode == 0, f"{name} {' '.join(args)} failed:\n{tail(done.stderr, 80)}"
    return done.stdout


def _wait(stack: ComposeStack, services: tuple[str, ...], what: str) -> None:
    """Until every service in `services` is healthy and the API answers on the loopback."""
    deadline = time.monotonic() + UP_S
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        health = {s: stack.health(s) for s in services}
        if set(health.values()) == {"healthy"}:
            try:
                if httpx.get(f"{stack.url}/v1/health", timeout=3).json().get("ok") is True:
                    return
            except (httpx.HTTPError, ValueError):
                pass
        time.sleep(1)
    pytest.fail(f"{what} in {UP_S:.0f} s: {health}\n{stack.logs()}")


def _wait_for_hellos(stack: ComposeStack) -> list[dict[str, Any]]:
    """Until both enrolled hosts have said hello with the job environment built here."""
    deadline = time.monotonic() + UP_S
    hosts: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        hosts = stack.c2d("hosts", token=stack.admin_token)
        seen = {h["name"] for h in hosts if h["last_seen"] and "python-ml" in h["environments"]}
        if seen == set(HOSTS.values()):
            return hosts
        time.sleep(1)
    pytest.fail(f"the data hosts did not say hello in {UP_S:.0f} s: {hosts}\n{stack.logs()}")


def _tear_down(stack: ComposeStack) -> None:
    """Remove everything the module made; every step runs even if an earlier one failed."""
    problems: list[str] = []
    done = stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False)
    if done.returncode != 0:
        problems.append(f"docker-compose down: {done.stderr}")
    client = docker.from_env()
    try:
        for container in client.containers.list(all=True, filters={"label": "c2d.job"}):
            # A job's container, or its dry run's (labelled JOB-dryrun).
            if container.labels.get("c2d.job", "").removesuffix("-dryrun") in stack.job_ids:
                container.remove(force=True)
        for image_id in stack.images:
            with contextlib.suppress(docker.errors.NotFound):
                client.images.remove(image_id, force=True)
        if stack.image:
            try:
                client.images.remove(stack.image, noprune=True)  # the tag; the image if only it
            except docker.errors.APIError as exc:
                problems.append(f"removing the tag {stack.image}: {exc}")
    finally:
        client.close()
    released = subprocess.run(
        ["bash", str(SCRIPTS / "compose_host.sh"), "release"],
        env=stack.env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if released.returncode != 0:
        problems.append(f"compose_host.sh release: {released.stderr}")
    left = stack.job_mounts() + [
        str(stack.host_state(s)) for s in HOSTS if os.path.ismount(stack.host_state(s))
    ]
    if left or stack.mounts_under(stack.root):
        problems.append(f"mounts left under {stack.root}: {left}; not deleting it")
    else:
        shutil.rmtree(stack.root, ignore_errors=True)
    assert not problems, "\n".join(problems)


def _refused_token(stack: ComposeStack, service: str) -> None:
    """Hand `service` a token the API never issued; it must delete it and keep waiting."""
    _script(stack, "compose_host.sh", "enroll", service, timeout=30, stdin="not-a-token\n")
    token_file = stack.host_state(service) / "enroll-token"
    deadline = time.monotonic() + 60
    log = ""
    while time.monotonic() < deadline:
        log = stack.compose("logs", "--no-color", service).stdout
        if "refused the enrollment token" in log and not token_file.exists():
            break
        time.sleep(1)
    assert "refused the enrollment token" in log, log
    assert not token_file.exists(), log
    assert not (stack.host_state(service) / "host.json").exists()


@pytest.fixture(scope="module")
def stack(docker_client: Any, job_image: str) -> Iterator[ComposeStack]:
    """The compose stack of this module: up, both data hosts enrolled and saying hello, a
    dataset folder made on each."""
    if shutil.which("docker-compose") is None:
        _missing("docker-compose", "make services")
    if os.geteuid() != 0:
        _missing("root (the stack's data hosts loop-mount job outputs)", "sudo make test")
    root = Path(tempfile.mkdtemp(prefix="c2d-compose-", dir="/var/tmp"))
    stack = ComposeStack(project=f"c2dtest{uuid.uuid4().hex[:10]}", root=root, port=free_port())
    try:
        image_id = _script(stack, "compose_image.sh", timeout=BUILD_S).strip()
        # A tag of this project's own: another checkout's test building meanwhile must not
        # swap the image under this stack.
        stack.image = f"c2d/app:{stack.project}"
        docker_client.images.get(image_id).tag(stack.image)
        _script(stack, "compose_host.sh", "prepare", timeout=60)
        for service, (name, rows, seed) in DATASETS.items():
            stack.host_datasets(service).chmod(0o755)
            subprocess.run(
                [sys.executable, str(REPO / "examples" / "make_dataset.py"),
                 str(stack.host_datasets(service) / name), "--rows", str(rows),
                 "--seed", str(seed)],
                check=True, capture_output=True, timeout=COMMAND_S,
            )  # fmt: skip
        stack.compose("up", "--detach", "--no-build")
        _wait(stack, ("redis", "api"), "the control plane did not come up")
        stack.admin_token = (stack.state / "initial-admin-token").read_text().strip()
        # A wrong token (a typo, an old one) is refused and deleted; the host waits for the next.
        _refused_token(stack, "host-a")
        # The admin adds each host and hands its one-time token over on stdin.
        for service, name in HOSTS.items():
            added = stack.c2d("host", "add", name, token=stack.admin_token)
            assert added["fingerprint"] is None
            _script(stack, "compose_host.sh", "enroll", service, timeout=30,
                    stdin=added["enroll_token"] + "\n")  # fmt: skip
        _wait(stack, ("redis", "api", *HOSTS), "the data hosts did not enroll")
        _wait_for_hellos(stack)
        yield stack
    finally:
        _tear_down(stack)


def test_the_stack_comes_up_with_the_api_on_loopback_and_two_enrolled_hosts(
    stack: ComposeStack, job_image: str
) -> None:
    # `c2d init --no-local-host` ran once in the init service and handed the admin token over
    # in a root-only file; the control plane has no data host of its own.
    init = stack.container("init")
    assert init.attrs["State"]["ExitCode"] == 0
    token_file = stack.state / "initial-admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(stack.state.stat().st_mode) == 0o700
    assert (stack.state / "c2d.db").is_file()
    assert not (stack.state / "hosts").exists()

    # Each host enrolled from its own state folder: its key and credential are there, root's
    # alone, and the token file compose_host.sh left is gone.
    hosts = {h["name"]: h for h in stack.c2d("hosts", token=stack.admin_token)}
    assert set(hosts) == set(HOSTS.values())
    for service, name in HOSTS.items():
        home = stack.host_state(service)
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        facts = json.loads((home / "host.json").read_text())
        assert facts["name"] == name
        assert facts["api_url"] == "http://api:8700"  # over the compose network
        assert facts["fingerprint"] == hosts[name]["fingerprint"]
        for secret in ("host.key", "host.token"):
            assert stat.S_IMODE((home / secret).stat().st_mode) == 0o600
        assert not (home / "enroll-token").exists()
        # The hosts report the job environment built on the machine's engine.
        assert hosts[name]["environments"]["python-ml"]["image_id"] == job_image
    envs = {e["name"]: e for e in stack.c2d("env", "list", token=stack.admin_token)}
    assert envs["python-ml"]["image_id"] == job_image

    # The API is published on the machine's loopback only; Redis is not published at all, nor
    # is any data host (they only connect out).
    api_ports = stack.container("api").attrs["NetworkSettings"]["Ports"]["8700/tcp"]
    assert {p["HostIp"] for p in api_ports} == {"127.0.0.1"}
    assert {p["HostPort"] for p in api_ports} == {str(stack.port)}
    for service in ("redis", *HOSTS):
        assert not any(stack.container(service).attrs["NetworkSettings"]["Ports"].values())


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
    # The password is in no process's arguments, where `ps` on the machine would show it.
    for service in ("redis", "api", *HOSTS):
        top = stack.container(service).top(ps_args="-o pid,args")
        assert not any(password in " ".join(p) for p in top["Processes"]), service


def _ran_on(stack: ComposeStack, job_id: str, token: str) -> str:
    """The data host whose worker started `job_id`, from the ledger's `job.started` entry."""
    entries = stack.c2d("ledger", "show", "--job", job_id, token=token)
    started = [e for e in entries if e["type"] == "job.started"]
    assert len(started) == 1, entries
    worker = str(started[0]["body"]["worker"])
    return worker.split("@", 1)[0]


def test_each_host_runs_the_job_on_its_own_dataset_to_a_loadable_model(
    stack: ComposeStack, tmp_path: Path
) -> None:
    owner = stack.c2d("user", "add", "olga", "--role", "owner", token=stack.admin_token)
    researcher = stack.c2d("user", "add", "rita", "--role", "researcher", token=stack.admin_token)
    owner_token, researcher_token = owner["token"], researcher["token"]

    # The owner registers each folder on the host that holds it, in its container: the host
    # hashes and signs it there; the API records the signed statement, never the path.
    for service, (name, _, _) in DATASETS.items():
        folder = stack.host_datasets(service) / name
        dataset = stack.c2d_on_host(
            service, "dataset", "add", name, str(folder), "--review-outputs", token=owner_token
        )
        assert dataset["files"] == 1
        assert dataset["digest"].startswith("sha256:")
        assert dataset["policy"]["host"] == HOSTS[service]
    # A host sees no other host's datasets: host-a has no such folder, and it lies outside
    # host-a's dataset root anyway.
    other = stack.host_datasets("host-b") / DATASETS["host-b"][0]
    refused = stack.c2d_on_host(
        "host-a", "dataset", "add", "stolen", str(other), token=owner_token, expect=4
    )
    assert "not inside a dataset root of this host" in refused, refused

    # The researcher submits the example to each dataset from the machine; the owner approves.
    jobs: dict[str, str] = {}
    for service, (name, _, _) in DATASETS.items():
        submitted = stack.c2d(
            "submit", str(REPO / "examples" / "jobs" / "diabetes-classifier"), "--dataset",
            name, token=researcher_token,
        )  # fmt: skip
        jobs[service] = submitted["id"]
        stack.job_ids.append(submitted["id"])
        assert submitted["state"] == "pending"
    for job_id in jobs.values():
        approved = stack.c2d("approve", job_id, token=owner_token)
        assert approved["state"] in {"approved", "running", "succeeded"}

    # Each host runs its job on the machine's engine: dataset, code and the loop-mounted
    # /outputs are bound by their paths in that host's folders. An /outputs mount that did not
    # reach the machine would leave the job's writes outside the filesystem the collector
    # reads, and the job would fail. While they run, `c2d hosts` lists each under its host.
    deadline = time.monotonic() + JOB_S
    states = dict.fromkeys(jobs.values(), "approved")
    seen_running: dict[str, set[str]] = {job_id: set() for job_id in jobs.values()}
    while time.monotonic() < deadline and not set(states.values()) <= FINAL:
        for host in stack.c2d("hosts", token=owner_token):
            for job_id in host["running"]:
                if job_id in seen_running:
                    seen_running[job_id].add(host["name"])
        for job_id in states:
            states[job_id] = stack.c2d("status", job_id, token=researcher_token)["state"]
        time.sleep(0.5)
    for job_id, state in states.items():
        if state != "succeeded":
            job = stack.c2d("status", job_id, token=owner_token)
            log = stack.c2d("logs", job_id, token=owner_token)
            pytest.fail(f"job {job_id} ended {state}: {job}\n{log}\n{stack.logs()}")
    for service, job_id in jobs.items():
        assert _ran_on(stack, job_id, owner_token) == HOSTS[service]
        assert seen_running[job_id] <= {HOSTS[service]}, seen_running

    for service, job_id in jobs.items():
        released = stack.c2d("release", job_id, token=owner_token)
        assert released["state"] == "released"

        # The researcher fetches; fetch checks every digest and the receipt against the key
        # the init service made in the control plane's state folder.
        out = tmp_path / service
        fetched = stack.c2d(
            "fetch", job_id, "-o", str(out), "--key", str(stack.state / "ledger.key.pub"),
            token=researcher_token,
        )  # fmt: skip
        assert fetched["verified"] is True
        assert {f["name"] for f in fetched["files"]} == {"model.skops", "metrics.json"}

        model_path = out / "model.skops"
        model = skops.io.load(model_path, trusted=skops.io.get_untrusted_types(file=model_path))
        name = DATASETS[service][0]
        data = pd.read_csv(stack.host_datasets(service) / name / "patients.csv")
        predictions = model.predict(data[FEATURES])
        assert set(predictions) <= {0, 1}
        accuracy = float((predictions == data["diabetes"]).mean())
        assert accuracy > 0.6
        assert abs(accuracy - fetched["metrics"]["accuracy"]) < 0.25
        # The receipt's job.started entry names the host that ran it too.
        receipt = json.loads((out / "receipt.json").read_text())
        entries = [json.loads(base64.b64decode(e["entry"])) for e in receipt["entries"]]
        started = [e["body"]["worker"] for e in entries if e["type"] == "job.started"]
        assert [w.split("@", 1)[0] for w in started] == [HOSTS[service]], started

    # The ledger the containers wrote verifies with the machine's c2d, straight from the folder.
    local = stack.c2d(
        "ledger", "verify", "--home", str(stack.state), "--key",
        str(stack.state / "ledger.key.pub"),
    )  # fmt: skip
    assert local["ok"] is True

    # The hosts' unmounts of the jobs' /outputs reached the machine too: nothing stays mounted.
    deadline = time.monotonic() + 60
    while stack.job_mounts() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stack.job_mounts() == [], stack.logs()


def test_a_job_with_its_own_dockerfile_is_built_and_run_by_its_data_host(
    stack: ComposeStack, tmp_path: Path
) -> None:
    # The API has no engine: the data host that holds the dataset builds the job's image on
    # its engine while the submission waits, and runs the job in it.
    owner = stack.c2d("user", "add", "otto", "--role", "owner", token=stack.admin_token)
    researcher = stack.c2d("user", "add", "ruth", "--role", "researcher", token=stack.admin_token)
    name = "clinic-own"
    folder = stack.host_datasets("host-b") / name
    shutil.copytree(stack.host_datasets("host-b") / DATASETS["host-b"][0], folder)
    stack.c2d_on_host(
        "host-b", "dataset", "add", name, str(folder), "--release-on-success",
        token=owner["token"],
    )  # fmt: skip

    proof = uuid.uuid4().int % 1_000_000  # a new image: no cached build can stand in for it
    job_dir = tmp_path / "own-image"
    job_dir.mkdir()
    (job_dir / "job.yaml").write_text(
        "name: own-image\ncommand: [python3, train.py]\nimage: {build: Dockerfile}\n"
        "resources: {memory: 512MiB, timeout: 5m}\n"
    )
    (job_dir / "Dockerfile").write_text(
        f"FROM c2d/python-ml:latest\nUSER root\nRUN echo {proof} > /etc/c2d-proof\n"
        "USER 65534:65534\n"
    )
    (job_dir / "train.py").write_text(
        "import json, pathlib\n"
        "proof = int(pathlib.Path('/etc/c2d-proof').read_text())\n"
        "rows = sum(1 for _ in next(pathlib.Path('/data').glob('*/patients.csv')).open()) - 1\n"
        "json.dump({'proof': proof, 'rows': rows}, open('/outputs/metrics.json', 'w'))\n"
    )
    job = stack.c2d("submit", str(job_dir), "--dataset", name, token=researcher["token"])
    stack.job_ids.append(job["id"])
    stack.images.append(job["image_id"])
    assert job["state"] == "pending"
    review = stack.c2d("review", job["id"], token=owner["token"])
    assert review["image"]["source"] == "dockerfile"
    assert review["image"]["facts"]["image_id"] == job["image_id"]
    assert review["image"]["facts"]["base"] == "c2d/python-ml:latest"

    stack.c2d("approve", job["id"], token=owner["token"])
    deadline = time.monotonic() + JOB_S
    state = "approved"
    while time.monotonic() < deadline and state not in FINAL:
        time.sleep(0.5)
        state = stack.c2d("status", job["id"], token=owner["token"])["state"]
    done = stack.c2d("status", job["id"], token=owner["token"])
    # The dataset releases on success: the outputs left host-b for the control plane.
    assert state == "released", f"{done}\n{stack.logs()}"
    assert done["image_id"] == job["image_id"]
    assert done["outcome"]["metrics"] == {"proof": proof, "rows": DATASETS["host-b"][1]}
    assert _ran_on(stack, job["id"], owner["token"]) == HOSTS["host-b"]


def test_the_control_plane_has_no_engine_socket_and_no_datasets(stack: ComposeStack) -> None:
    def mounts(service: str) -> list[dict[str, Any]]:
        return list(stack.container(service).attrs["Mounts"])

    def holds_socket(service: str) -> bool:
        return any(
            m["Destination"].endswith("docker.sock") or m["Source"].endswith("docker.sock")
            for m in mounts(service)
        )

    # Only the data hosts hold the engine's socket.
    for service in HOSTS:
        assert holds_socket(service), service
    for service in ("api", "init", "redis"):
        assert not holds_socket(service), service

    # The API mounts the control plane's state folder and nothing else: no dataset folder, no
    # host's state folder; and it has no way to an engine at all.
    api = stack.container("api")
    assert [(m["Source"], m["Destination"]) for m in mounts("api")] == [
        (str(stack.state), str(stack.state))
    ]
    assert not any(v.startswith("DOCKER_HOST=") for v in api.attrs["Config"]["Env"])
    probe = (
        "import glob, json, os\n"
        "print(json.dumps({'sockets': glob.glob('/var/run/*.sock') + glob.glob('/run/**/*.sock',"
        " recursive=True), 'docker_host': os.environ.get('DOCKER_HOST')}))\n"
    )
    done = stack.compose("exec", "-T", "api", "python3", "-c", probe, timeout=COMMAND_S)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"sockets": [], "docker_host": None}

    # Each data host mounts its own folders and not the other's, and none the control plane's.
    for service in HOSTS:
        sources = {m["Source"] for m in mounts(service)}
        other = next(s for s in HOSTS if s != service)
        assert str(stack.host_state(service)) in sources
        assert str(stack.host_datasets(service)) in sources
        assert str(stack.host_state(other)) not in sources
        assert str(stack.host_datasets(other)) not in sources
        assert str(stack.state) not in sources
        data = next(m for m in mounts(service) if m["Source"] == str(stack.host_datasets(service)))
        assert data["RW"] is False


def test_init_again_and_a_host_restart_leave_the_installation_as_it_is(
    stack: ComposeStack,
) -> None:
    key = (stack.state / "ledger.key").read_bytes()
    token = (stack.state / "initial-admin-token").read_bytes()
    done = stack.compose("run", "--rm", "init", timeout=COMMAND_S)
    assert "already holds a c2d installation" in done.stderr + done.stdout
    assert (stack.state / "ledger.key").read_bytes() == key
    assert (stack.state / "initial-admin-token").read_bytes() == token

    # A restarted host does not enroll again: it starts with the key and credential it has,
    # and says hello with them.
    host_key = (stack.host_state("host-a") / "host.key").read_bytes()
    name = HOSTS["host-a"]
    fingerprint = {h["name"]: h for h in stack.c2d("hosts", token=stack.admin_token)}[name][
        "fingerprint"
    ]
    stack.compose("restart", "host-a", timeout=COMMAND_S)
    started = _rfc3339(stack.container("host-a").attrs["State"]["StartedAt"])
    deadline = time.monotonic() + UP_S
    host: dict[str, Any] = {}
    while time.monotonic() < deadline:
        host = {h["name"]: h for h in stack.c2d("hosts", token=stack.admin_token)}[name]
        if host["last_seen"] and _rfc3339(host["last_seen"]) > started:
            break
        time.sleep(1)
    else:
        pytest.fail(f"host-a said no hello after its restart: {host}\n{stack.logs()}")
    assert host["fingerprint"] == fingerprint
    assert (stack.host_state("host-a") / "host.key").read_bytes() == host_key
    log = stack.compose("logs", "--no-color", "host-a").stdout
    assert log.count("is enrolled; starting its agent") == 2, log
    assert "waiting for the enrollment token" in log  # before its first start only
    assert stack.c2d("env", "list", token=stack.admin_token)


def _rfc3339(stamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (Docker's carry nanoseconds)."""
    from datetime import datetime

    stamp = stamp.replace("Z", "+00:00")
    head, _, rest = stamp.partition(".")
    if rest:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        stamp = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(stamp).timestamp()
