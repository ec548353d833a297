"""The CLI's front door: usage errors are one line and exit 2, before anything is made."""

from __future__ import annotations

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
