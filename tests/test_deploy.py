"""The deployment files: the Kubernetes manifests in deploy/kubernetes/ and the indexing workers
of docker-compose.yml, checked as far as a machine without a cluster or Docker allows.

Each manifest is validated against the Kubernetes API's own schemas (kubernetes-validate
ships them, so this runs offline), in strict mode: a misspelt or misplaced field fails. The
Jobs' command line is run by a real /bin/sh with each completion index, and what it would
start is read by findimage's own argument parser; the settings the pods get are read by
findimage's own settings loader."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.http import HEALTH_PATH
from findimage.cli import build_parser
from findimage.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes the manifests are written for (backoffLimitPerIndex is GA in 1.33)
# and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.33", kubernetes_validate.latest_version()]


def _documents(name: str) -> list[dict[str, Any]]:
    text = (KUBERNETES / name).read_text(encoding="utf-8")
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def _all_documents() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in _documents(path.name):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{key} is defined twice"
            found[key] = doc
    return found


def _job(name: str) -> dict[str, Any]:
    return _all_documents()[("Job", name)]


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", sorted(p.name for p in KUBERNETES.glob("*.yaml")))
def test_every_manifest_is_valid_for_the_kubernetes_api(name: str, version: str) -> None:
    documents = _documents(name)
    assert documents, f"{name} holds no manifest"
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_a_misspelt_field_is_refused_by_the_schema_check() -> None:
    """The check above can fail: strict mode refuses a field the API does not have."""
    job = _job("findimage-index")
    job["spec"]["backoffLimitPerIndexes"] = job["spec"].pop("backoffLimitPerIndex")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("name", ["findimage-index", "findimage-rebuild"])
def test_the_indexer_is_an_indexed_job_retried_per_shard(name: str) -> None:
    spec = _job(name)["spec"]
    assert spec["completionMode"] == "Indexed"
    # One failing shard is retried alone, and does not stop the others at once.
    assert spec["backoffLimitPerIndex"] >= 1
    assert 0 <= spec["maxFailedIndexes"] < spec["completions"]
    assert "backoffLimit" not in spec  # the per-index limit is the one that applies
    # backoffLimitPerIndex requires it; the kubelet restarting in place would bypass it.
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert 1 <= spec["parallelism"] <= spec["completions"]
    # N in the command line is the Job's number of completions.
    assert _env(_container(_job(name)))["SHARDS"]["value"] == str(spec["completions"])


def _fake_findimage(folder: Path) -> Path:
    """A `findimage` that records the arguments it was started with: the far edge of what the
    container's shell runs (the real command needs a cluster)."""
    folder.mkdir()
    script = folder / "findimage"
    record = folder / "argv.json"
    script.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return record


def _command_lines(job_name: str, tmp_path: Path, into: str | None = None) -> list[list[str]]:
    """What each pod of the Job starts, index 0 to completions - 1, as its /bin/sh runs it."""
    job = _job(job_name)
    container = _container(job)
    env = _env(container)
    record = _fake_findimage(tmp_path / "bin")
    lines = []
    for index in range(job["spec"]["completions"]):
        values = {
            # What the Job controller sets in each pod of an Indexed Job
            # (https://kubernetes.io/docs/concepts/workloads/controllers/job/#completion-mode).
            "JOB_COMPLETION_INDEX": str(index),
            "SHARDS": env["SHARDS"]["value"],
            "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        }
        if into is not None:
            values["INTO"] = into
        record.unlink(missing_ok=True)
        ran = subprocess.run(
            container["command"], env=values, capture_output=True, text=True, check=False
        )
        assert ran.returncode == 0, ran.stderr
        lines.append(json.loads(record.read_text()))
    return lines


def _shards(lines: list[list[str]]) -> list[str]:
    return [line[line.index("--shard") + 1] for line in lines]


def test_pod_k_indexes_shard_k_plus_one_of_n(tmp_path: Path) -> None:
    lines = _command_lines("findimage-index", tmp_path)
    n = len(lines)
    # JOB_COMPLETION_INDEX counts from 0, findimage's shards from 1: every shard exactly once.
    assert _shards(lines) == [f"{k}/{n}" for k in range(1, n + 1)]
    assert lines[0] == ["index", "--shard", f"1/{n}"]


def test_the_rebuild_workers_write_into_the_prepared_index(tmp_path: Path) -> None:
    lines = _command_lines("findimage-rebuild", tmp_path, into="findimage-images-20261206")
    n = len(lines)
    assert _shards(lines) == [f"{k}/{n}" for k in range(1, n + 1)]
    assert lines[-1] == ["index", "--shard", f"{n}/{n}", "--into", "findimage-images-20261206"]
    into = _env(_container(_job("findimage-rebuild")))["INTO"]["valueFrom"]["configMapKeyRef"]
    assert into == {"name": "findimage-rebuild", "key": "into"}


@pytest.mark.parametrize("job_name", ["findimage-index", "findimage-rebuild"])
def test_the_command_lines_parse_with_findimages_own_parser(job_name: str, tmp_path: Path) -> None:
    """Needs `--shard K/N` and `--into NAME` in findimage/cli.py (issue 23)."""
    for line in _command_lines(job_name, tmp_path, into="findimage-images-20261206"):
        build_parser().parse_args(line)  # exits on an option it does not know


def test_the_rebuild_job_is_the_indexer_job_but_for_its_name_and_target() -> None:
    index, rebuild = _job("findimage-index"), _job("findimage-rebuild")
    assert index["spec"]["completions"] == rebuild["spec"]["completions"]
    for job in (index, rebuild):
        job["metadata"].pop("name")
        for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
            labels.pop("app.kubernetes.io/component")
        container = _container(job)
        container["command"][-1] = container["command"][-1].replace(' --into "$INTO"', "")
        container["env"] = [entry for entry in container["env"] if entry["name"] != "INTO"]
    assert index == rebuild


def _pod_environments() -> dict[str, dict[str, dict[str, Any]]]:
    """Each workload's environment: the ConfigMaps it takes whole, then its own `env`."""
    documents = _all_documents()
    found = {}
    for (kind, name), workload in documents.items():
        if kind not in ("Job", "Deployment"):
            continue
        container = _container(workload)
        values: dict[str, dict[str, Any]] = {}
        for source in container.get("envFrom", []):
            config_map = documents[("ConfigMap", source["configMapRef"]["name"])]
            values |= {key: {"value": value} for key, value in config_map["data"].items()}
        found[name] = values | _env(container)
    return found


def _setting_names() -> set[str]:
    names = set()
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if alias is not None:
            names.add(next(choice for choice in alias.choices if choice.isupper()))
        else:
            names.add(f"FINDIMAGE_{field.upper()}")
    return names


def test_every_findimage_variable_the_pods_get_is_a_setting() -> None:
    settings = _setting_names()
    for workload, environment in _pod_environments().items():
        for name in environment:
            if name.startswith(("FINDIMAGE_", "SLACK_")):
                assert name in settings, f"{workload}: {name} is not a findimage setting"


def test_the_pods_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a pod gets, with the Secrets filled in and a CPU limit of 2, is a valid
    configuration for findimage, on Elasticsearch, with the library at the mount."""
    for workload, environment in _pod_environments().items():
        for name in list(os.environ):
            if name.startswith(("FINDIMAGE_", "SLACK_")):
                monkeypatch.delenv(name)
        for name, entry in environment.items():
            source = entry.get("valueFrom", {})
            if "value" in entry:
                monkeypatch.setenv(name, entry["value"])
            elif "resourceFieldRef" in source:
                monkeypatch.setenv(name, "2")  # limits.cpu with divisor 1, rounded up
            elif "secretKeyRef" in source and name != "FINDIMAGE_ES_API_KEY":
                monkeypatch.setenv(name, "from-a-secret")
        settings = load_settings(_env_file=None)
        assert settings.backend == "elasticsearch", workload
        assert str(settings.library) == "/images", workload
        assert settings.threads == 2, workload
        assert settings.es_password is not None, workload


def test_secrets_come_from_secrets_and_the_example_defines_them() -> None:
    example = {doc["metadata"]["name"]: doc for doc in _documents("secrets.example.yaml")}
    text = (KUBERNETES / "secrets.example.yaml").read_text(encoding="utf-8")
    for workload, environment in _pod_environments().items():
        for name, entry in environment.items():
            if any(word in name for word in ("PASSWORD", "KEY", "TOKEN", "SECRET")):
                if name.endswith("_KEY_ID"):
                    continue
                # Never a literal value in a manifest or a ConfigMap.
                assert "secretKeyRef" in entry.get("valueFrom", {}), (workload, name)
            reference = entry.get("valueFrom", {}).get("secretKeyRef")
            if reference is None:
                continue
            secret = example[reference["name"]]
            if reference.get("optional"):
                # An alternative: in the example, or named there in a comment.
                assert reference["key"] in secret["stringData"] or (
                    f"# {reference['key']}:" in text
                ), (workload, name)
            else:
                assert reference["key"] in secret["stringData"], (workload, name)


def _mounts(workload: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Each mount path with its volumeMount and its volume."""
    spec = workload["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    return {
        mount["mountPath"]: (mount, volumes[mount["name"]])
        for mount in _container(workload)["volumeMounts"]
    }


@pytest.mark.parametrize(
    ("kind", "name"),
    [("Job", "findimage-index"), ("Job", "findimage-rebuild"), ("Deployment", "findimage-bot")],
)
def test_the_library_is_mounted_read_only_and_the_models_are_shared(kind: str, name: str) -> None:
    workload = _all_documents()[(kind, name)]
    mounts = _mounts(workload)
    mount, volume = mounts["/images"]
    assert mount["readOnly"] is True
    assert volume["persistentVolumeClaim"]["readOnly"] is True
    _, models = mounts["/models"]
    claim = _all_documents()[
        ("PersistentVolumeClaim", models["persistentVolumeClaim"]["claimName"])
    ]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    # Bounded: the scheduler places the pods by their requests, and a runaway pod is stopped.
    resources = _container(workload)["resources"]
    assert set(resources) == {"requests", "limits"}
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_the_bot_is_ready_when_healthz_says_so_on_its_own_port() -> None:
    documents = _all_documents()
    bot = documents[("Deployment", "findimage-bot")]
    container = _container(bot)
    assert container["command"] == ["findimage", "serve"]
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == HEALTH_PATH
    (port,) = container["ports"]
    assert probe["port"] == port["name"]
    assert (
        str(port["containerPort"])
        == _pod_environments()["findimage-bot"]["FINDIMAGE_PORT"]["value"]
    )
    service = documents[("Service", "findimage-bot")]
    assert service["spec"]["selector"] == bot["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    # Kubernetes kills the pod this long after SIGTERM: the bot's own grace must end first.
    grace = float(_pod_environments()["findimage-bot"]["FINDIMAGE_SHUTDOWN_GRACE_SECONDS"]["value"])
    assert grace < bot["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]


# --- docker compose: the indexing workers on one host -------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def _workers() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    return {name: s for name, s in services.items() if "workers" in s.get("profiles", [])}


def test_the_compose_workers_cover_every_shard_once() -> None:
    workers = _workers()
    n = len(workers)
    assert n >= 2
    shards = sorted(_shards([service["command"][1:] for service in workers.values()]))
    assert shards == [f"{k}/{n}" for k in range(1, n + 1)]
    for service in workers.values():
        assert service["command"][:2] == ["findimage", "index"]


def test_the_compose_workers_command_lines_parse_with_findimages_own_parser() -> None:
    """Needs `--shard K/N` in findimage/cli.py (issue 23)."""
    for service in _workers().values():
        build_parser().parse_args(service["command"][1:])  # exits on an option it does not know


def test_the_compose_workers_run_as_the_bot_does_but_publish_nothing() -> None:
    bot = _compose()["services"]["bot"]
    for name, worker in _workers().items():
        for key in ("image", "build", "env_file", "environment", "volumes", "depends_on"):
            assert worker[key] == bot[key], (name, key)
        assert "ports" not in worker, name
        # A worker that fails is started again, a few times: its shard then ends complete.
        assert worker["restart"].startswith("on-failure"), name
    assert "profiles" not in bot  # plain `docker compose up` starts the bot, not the workers


def test_the_compose_recipe_names_the_workers_that_exist() -> None:
    header = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    named = set(_workers())
    for line in header.splitlines():
        words = shlex.split(line.lstrip("# "), comments=True) if "docker compose" in line else []
        if words[:3] in (["docker", "compose", "up"], ["docker", "compose", "wait"]):
            services = {w for w in words[3:] if not w.startswith("-")}
            if services & named:
                assert services == named, line


def test_the_deploy_readme_names_every_manifest_and_applies_only_files_that_exist() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    for path in KUBERNETES.glob("*.yaml"):
        assert f"`kubernetes/{path.name}`" in readme, path.name
    texts = [readme] + [p.read_text(encoding="utf-8") for p in KUBERNETES.glob("*.yaml")]
    for text in texts:
        for applied in re.findall(r"kubectl apply((?: -f \S+)+)", text):
            for name in (n.rstrip(",.;") for n in applied.split(" -f ")[1:]):
                assert (ROOT / name).exists() or (KUBERNETES / name).exists(), name
    # The compose recipe is the one docker-compose.yml gives.
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for command in re.findall(r"^docker compose (?:up|wait) .*?(?=\s+#|$)", readme, re.M):
        assert command in compose, command
