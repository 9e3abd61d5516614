"""The pipeline kit: the GitHub workflows (linted by actionlint), the GitLab example, the pre-commit hook
(run by pre-commit on a throwaway repository, offline) and the packaging facts a user of them reads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
BIN = Path(sys.executable).parent  # actionlint, pre-commit and topology are installed beside this Python


def tool(name: str) -> str:
    found = BIN / name
    assert found.is_file(), f"{name} is not installed beside {sys.executable}: pip install -e '.[dev]'"
    return str(found)


def workflow(name: str) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
    return {("on" if key is True else key): value for key, value in yaml.safe_load((WORKFLOWS / name).read_text()).items()}


def test_actionlint_finds_nothing_in_the_workflows():
    files = sorted(str(path) for path in WORKFLOWS.glob("*.yml"))
    assert len(files) >= 2
    done = subprocess.run([tool("actionlint"), "-no-color", *files], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The lint is real: a typo in an expression fails it."""
    broken = (WORKFLOWS / "topology.yml").read_text().replace("${{ inputs.server }}", "${{ inputs.servr }}")
    (tmp_path / "broken.yml").write_text(broken)
    done = subprocess.run([tool("actionlint"), "-no-color", str(tmp_path / "broken.yml")], capture_output=True, text=True)
    assert done.returncode == 1 and "servr" in done.stdout


def _scripts(job: dict) -> list[str]:
    return [step["with"]["script"] for step in job["steps"] if "github-script" in step.get("uses", "")]


def test_the_github_scripts_are_valid_javascript(tmp_path):
    node = shutil.which("node")
    assert node, "node (which GitHub's runners have) checks the github-script steps' syntax"
    scripts = [script for job in workflow("topology.yml")["jobs"].values() for script in _scripts(job)]
    assert len(scripts) == 2
    for i, script in enumerate(scripts):
        # actions/github-script runs the script as the body of an async function.
        path = tmp_path / f"script{i}.js"
        path.write_text(f"(async function (github, context, core, require) {{\n{script}\n}});\n")
        done = subprocess.run([node, "--check", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_the_reusable_workflow_plans_comments_by_marker_keeps_the_plan_and_applies_exactly_it():
    reusable = workflow("topology.yml")
    assert set(reusable["on"]) == {"workflow_call"}
    plan, apply = reusable["jobs"]["plan"], reusable["jobs"]["apply"]
    plan_runs = "\n".join(step.get("run", "") for step in plan["steps"])
    assert "topology validate" in plan_runs and "--out plan.json --format markdown > plan.md" in plan_runs
    [upload] = [step for step in plan["steps"] if "upload-artifact" in step.get("uses", "")]
    assert upload["with"]["path"] == "plan.json"
    [comment] = _scripts(plan)
    assert 'body.split("\\n", 1)[0]' in comment and "updateComment" in comment and "createComment" in comment
    apply_runs = "\n".join(step.get("run", "") for step in apply["steps"])
    assert "topology apply saved/plan.json" in apply_runs and " -f " not in apply_runs  # the saved plan, no more
    # Credentials come from secrets, never from inputs a log would show.
    assert {"nats-user", "nats-password", "nats-token", "nats-creds"} <= set(reusable["on"]["workflow_call"]["secrets"])
    caller = workflow("medisync.yml")
    assert caller["jobs"]["topology"]["uses"] == "./.github/workflows/topology.yml"
    assert set(caller["on"]) == {"pull_request", "push"}


def test_the_pipeline_comment_finds_its_plan_by_the_marker_render_writes_first():
    from medisync_topology.ops import Plan
    from medisync_topology.render import render_markdown

    first_line = render_markdown(Plan(owner="medisync", environment="production")).split("\n", 1)[0]
    assert re.fullmatch(r"<!-- medisync-topology plan owner=medisync environment=production -->", first_line)


def test_the_gitlab_example_does_the_same_and_its_python_compiles():
    example = yaml.safe_load((REPO / "ci" / "gitlab-ci.example.yml").read_text())
    assert example["stages"] == ["validate", "plan", "apply"]
    scripts = {name: "\n".join(example[name]["script"]) for name in ("validate", "plan", "apply")}
    assert "topology validate $TOPOLOGY_FILES" in scripts["validate"]
    assert "--out plan.json --format markdown > plan.md" in scripts["plan"]
    assert example["plan"]["artifacts"]["paths"] == ["plan.json", "plan.md"]
    assert scripts["apply"].rstrip().endswith("topology apply saved/plan.json")
    blocks = re.findall(r"python - <<'PY'\n(.*?)\nPY", scripts["plan"] + scripts["apply"], re.S)
    assert len(blocks) == 2
    for block in blocks:
        compile(block, "gitlab-ci.example.yml", "exec")


GOOD = "version: 1\nowner: medisync\nstreams:\n  EVENTS: {subjects: [medisync.etl.>]}\n"
BAD = "version: 1\nowner: medisync\nstreams:\n  EVENTS: {subjects: [medisync.etl.>], max_agee: 7d}\n"


@pytest.fixture
def throwaway(tmp_path):
    """A git repository with a topology.yaml, and the environment pre-commit runs in: nothing from the network."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com",
           # Anything that would reach the network fails at once instead of hanging.
           "PIP_NO_INDEX": "1", "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    (repo / "topology.yaml").write_text(GOOD)
    (repo / "README").write_text("not a topology\n")
    subprocess.run(["git", "add", "."], cwd=repo, check=True, env=env)
    return repo, env


def try_hook(repo: Path, env: dict, *files: str) -> subprocess.CompletedProcess:
    """pre-commit's own run of the hook, from this checkout (uncommitted changes included: try-repo)."""
    return subprocess.run([tool("pre-commit"), "try-repo", str(REPO), "topology-validate", "--color", "never",
                           "--files", *files], cwd=repo, env=env, capture_output=True, text=True, timeout=120)


def test_the_pre_commit_hook_passes_a_valid_topology_and_fails_an_invalid_one(throwaway):
    repo, env = throwaway
    done = try_hook(repo, env, "topology.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"topology validate\.+Passed", done.stdout)
    (repo / "topology.yaml").write_text(BAD)
    done = try_hook(repo, env, "topology.yaml")
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"topology validate\.+Failed", done.stdout)
    assert "topology.yaml:4:40: streams.EVENTS.max_agee: unknown field 'max_agee': did you mean 'max_age'?" in done.stdout
    # Another file changed: the hook does not run at all.
    done = try_hook(repo, env, "README")
    assert done.returncode == 0 and re.search(r"topology validate\.+\(no files to check\)Skipped", done.stdout), done.stdout


def test_the_hook_definition_is_what_pre_commit_reads():
    [hook] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "topology-validate" and hook["entry"] == "topology validate"
    assert hook["language"] == "system" and hook["pass_filenames"] is False

    def checked(path: str) -> bool:
        return bool(re.search(hook["files"], path)) and not re.search(hook["exclude"], path)

    assert checked("topology.yaml") and checked("config/topology.prod.yml")
    assert not checked("nats.conf") and not checked(".github/workflows/topology.yml")


def test_license_and_project_metadata():
    assert (REPO / "LICENSE").read_text().lstrip().startswith("Apache License\n                           Version 2.0")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert {"Homepage", "Changelog", "Issues"} <= set(project["urls"])
    assert "Programming Language :: Python :: 3.11" in project["classifiers"]
    assert (REPO / "CHANGELOG.md").read_text().startswith("# Changelog\n")
