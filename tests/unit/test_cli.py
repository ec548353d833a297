"""The CLI's front door: usage errors are one line and exit 2, before anything is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.catalog import CATALOG
from lab.cli import main


def run(capsys, *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_scenarios_lists_the_catalogue(capsys):
    code, out, _ = run(capsys, "scenarios")
    assert code == 0
    assert [line.split()[0] for line in out] == [e.id for e in CATALOG]


def test_unknown_scenario_is_one_line_and_exit_2(capsys, tmp_path):
    code, _, err = run(
        capsys, "run", "node-no-ca", "no-such-scenario", "--report-dir", str(tmp_path)
    )
    assert code == 2
    assert err == [
        "pull-lab: error: unknown scenario 'no-such-scenario' "
        + "(`pull-lab scenarios` lists the catalogue)"
    ]
    assert list(tmp_path.iterdir()) == [], "nothing half-written"


def test_unwritable_report_dir_is_one_line_and_exit_2(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "run", "--report-dir", str(blocker / "report"))
    assert code == 2
    assert len(err) == 1 and err[0].startswith(
        f"pull-lab: error: cannot write the report to {blocker / 'report'}"
    )


def test_doctor_without_kubeconfig_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("pathlib.Path.home", lambda: tmp_path)
    code, _, err = run(capsys, "doctor", "mypod")
    assert code == 2
    assert err == [
        "pull-lab: error: no kubeconfig found (pass --kubeconfig PATH or set KUBECONFIG)"
    ]


def test_bad_cluster_name_is_one_line_and_exit_2(capsys):
    code, _, err = run(capsys, "status", "--name", "Not_Valid")
    assert code == 2
    assert len(err) == 1 and "invalid cluster name 'Not_Valid'" in err[0]


def test_unknown_command_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


@pytest.fixture
def no_docker(monkeypatch, tmp_path):
    """A machine without Docker: PATH holds no `docker`; the lab's cache is a temp dir."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PULL_LAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PULL_LAB_CLUSTER_NAME", raising=False)
    monkeypatch.delenv("CI", raising=False)


@pytest.mark.usefixtures("no_docker")
def test_run_without_docker_and_not_root_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    code, out, err = run(capsys, "run", "registry-catalog", "--report-dir", str(tmp_path / "r"))
    assert code == 2
    assert err == [
        "pull-lab: error: Docker is not available and host-prep needs root: "
        "run `sudo pull-lab host-prep` (or start Docker)"
    ]
    assert out == [], "nothing ran, no report announced"
    assert not (tmp_path / "r" / "report.json").exists()


@pytest.mark.usefixtures("no_docker")
def test_root_without_docker_passes_the_check_because_the_build_runs_host_prep(monkeypatch):
    from lab.cli import check_run_environment

    monkeypatch.setattr("os.geteuid", lambda: 0)
    check_run_environment()  # no error: build_all starts with prepare_host, which starts Docker


@pytest.mark.usefixtures("no_docker")
def test_run_where_every_scenario_skipped_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch):
    # Docker answered the check, then was gone when the scenario's fixtures looked for it: the
    # real fixtures skip (not root, no Docker), so every selected scenario is skipped.
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setattr("lab.cli.docker_answers", lambda: True)
    report = tmp_path / "r"
    code, _, err = run(capsys, "run", "registry-catalog", "--report-dir", str(report))
    assert code == 2
    [line] = [line for line in err if line.startswith("pull-lab:")]
    assert line.startswith(
        "pull-lab: error: every selected scenario was skipped; registry-catalog: "
        "Docker is not available"
    ), "names the first scenario and its skip reason"
    assert line.endswith("(fix that and rerun)")
    doc = (report / "report.json").read_text()
    assert '"outcome": "skipped"' in doc


def test_a_run_with_no_scenario_or_only_skips_is_never_a_success(tmp_path):
    from lab.cli import check_something_ran
    from lab.errors import LabError

    with pytest.raises(LabError, match="no scenario ran"):
        check_something_ran([])
    skipped = [{"id": "node-no-ca", "outcome": "skipped", "error": "no node access\nmore"}]
    with pytest.raises(LabError, match="every selected scenario was skipped; node-no-ca: no node"):
        check_something_ran(skipped)
    check_something_ran([*skipped, {"id": "registry-catalog", "outcome": "passed"}])


def test_version_is_the_installed_distributions(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"pull-lab {version('registry-pull-lab')}\n"


def test_run_selects_scenarios_beside_lab_under_its_own_pytest_config():
    from lab.catalog import entry
    from lab.cli import RUN_CONFIG, SCENARIOS_DIR, scenario_args

    args = scenario_args([entry("registry-catalog"), entry("node-no-ca")])
    paths = [a.split("::")[0] for a in args if "::" in a]
    assert len(paths) == 2 and all(Path(p).is_file() for p in paths)
    assert all(Path(p).parent == SCENARIOS_DIR for p in paths)
    # -c: no pytest.ini or pyproject.toml found above site-packages applies to a lab run.
    assert args[args.index("-c") + 1] == str(RUN_CONFIG) and RUN_CONFIG.is_file()
    assert "tmp_path_retention_policy = failed" in RUN_CONFIG.read_text(), "keys: failed only"
    # With -c, conftest.py files load only below its directory unless confcutdir says so.
    assert f"--rootdir={SCENARIOS_DIR.parent}" in args
    assert f"--confcutdir={SCENARIOS_DIR.parent}" in args


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (
            ["--kubernetes", "1.34,1.37"],
            "--kubernetes with several versions makes a cluster per version "
            "(drop --kubeconfig, or give one version)",
        ),
        (["--workers", "1"], "--workers makes the lab's own cluster (drop it with --kubeconfig)"),
    ],
)
def test_run_on_a_foreign_cluster_refuses_what_would_make_a_cluster(capsys, tmp_path, extra, said):
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\n")
    report = tmp_path / "report"
    code, _, err = run(
        capsys, "run", "--kubeconfig", str(kubeconfig), "--report-dir", str(report), *extra
    )
    assert (code, err) == (2, [f"pull-lab: error: {said}"])
    assert not report.exists() or list(report.iterdir()) == []


def test_node_changes_without_a_kubeconfig_is_one_line_and_exit_2(capsys, tmp_path, no_docker):
    code, _, err = run(capsys, "run", "--allow-node-changes", "--report-dir", str(tmp_path / "r"))
    assert code == 2
    assert err == [
        "pull-lab: error: --allow-node-changes is for a cluster brought with a kubeconfig "
        "(add --kubeconfig FILE, or drop it: the lab's own cluster needs no consent)"
    ]


@pytest.mark.parametrize(
    ("jobs", "said"), [("0", "use 1 to 8 jobs, not 0"), ("two", "use a whole number of jobs")]
)
def test_a_bad_job_count_is_a_usage_error(capsys, jobs, said):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--jobs", jobs])
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err
