"""`pull-lab doctor`'s interface: kubeconfig files and contexts as kubectl picks them, and one
line with exit 2 for every usage or environment problem.

The kubeconfigs are real files read by the kubernetes client's own loader; their servers are
127.0.0.1 ports where nothing listens, so "unreachable API" is real too.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import yaml

from lab.cli import main
from lab.doctor.connect import choose, connect, kubeconfig_files


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kubeconfig(
    path: Path, context: str, server: str, namespace: str = "", shared_server: str = ""
) -> Path:
    """A kubeconfig with one context of its own and a cluster named ``shared`` in both."""
    ctx = {"cluster": context, "user": context, **({"namespace": namespace} if namespace else {})}
    data = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [
            {"name": context, "cluster": {"server": server}},
            {"name": "shared", "cluster": {"server": shared_server or server}},
        ],
        "users": [{"name": context, "user": {"token": f"token-{context}"}}],
        "contexts": [
            {"name": context, "context": ctx},
            {"name": f"{context}-shared", "context": {"cluster": "shared", "user": context}},
        ],
    }
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def two_files(tmp_path, monkeypatch):
    """KUBECONFIG=a.yaml:b.yaml, each with its own context, server and current-context."""
    a = kubeconfig(
        tmp_path / "a.yaml",
        "a",
        f"https://127.0.0.1:{closed_port()}",
        "team-a",
        shared_server="https://127.0.0.1:1111",
    )
    b = kubeconfig(
        tmp_path / "b.yaml", "b", "https://127.0.0.1:2222", shared_server="https://127.0.0.1:3333"
    )
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(a), str(b)]))
    return a, b


def run(capsys, *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_kubeconfig_lists_several_files_and_skips_missing_ones(two_files, tmp_path):
    a, b = two_files
    env = {"KUBECONFIG": os.pathsep.join([str(a), str(tmp_path / "gone.yaml"), str(b)])}

    assert kubeconfig_files(None, env) == (a, b)
    assert kubeconfig_files(str(b), env) == (b,)  # --kubeconfig is that one file


def test_the_first_files_current_context_wins_as_in_kubectl(two_files):
    chosen = choose(kubeconfig_files(None), None)

    assert (chosen.context, chosen.namespace) == ("a", "team-a")


def test_context_picks_one_from_the_second_file_through_the_clients_loader(two_files):
    api, chosen = connect(None, "b")

    assert (chosen.context, chosen.namespace) == ("b", "")
    assert api.configuration.host == "https://127.0.0.1:2222"
    assert api.configuration.api_key == {"BearerToken": "Bearer token-b"}  # b.yaml's user


def test_a_name_in_both_files_is_the_first_files(two_files):
    api, _ = connect(None, "b-shared")  # context of b.yaml naming cluster "shared"

    assert api.configuration.host == "https://127.0.0.1:1111"  # a.yaml's "shared"


def test_an_unknown_context_is_one_line_and_exit_2(two_files, capsys):
    a, b = two_files

    code, out, err = run(capsys, "doctor", "p", "--context", "nope")

    assert (code, out) == (2, [])
    assert err == [
        f"pull-lab: error: context 'nope' is not in kubeconfig {a}{os.pathsep}{b} "
        "(contexts: a, a-shared, b, b-shared)"
    ]


def test_an_unreachable_api_server_is_one_line_and_exit_2(two_files, capsys):
    code, out, err = run(capsys, "doctor", "p")

    assert (code, out, len(err)) == (2, [], 1)
    assert err[0].startswith("pull-lab: error: cannot read pod team-a/p from https://127.0.0.1:")
    assert "Connection refused" in err[0]
    assert err[0].endswith("(check the API server of context a)")


def test_all_on_an_unreachable_api_server_is_one_line_and_exit_2(two_files, capsys):
    code, _, err = run(capsys, "doctor", "--all", "-n", "lab")

    assert (code, len(err)) == (2, 1)
    assert err[0].startswith("pull-lab: error: cannot read pods in lab from https://127.0.0.1:")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("doctor",), "name one pod, or pass --all for every pod of the namespace"),
        (("doctor", "p", "--all"), "name one pod, or pass --all for every pod of the namespace"),
        (
            ("doctor", "p", "--ca-file", "ca.pem"),
            "--ca-file ca.pem: an existing file, and only with --probe",
        ),
    ],
)
def test_usage_problems_are_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)

    assert (code, out, err) == (2, [], [f"pull-lab: error: {message}"])


def test_a_missing_kubeconfig_file_is_one_line_and_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "doctor", "p", "--kubeconfig", str(tmp_path / "none"))

    assert (code, err) == (
        2,
        [f"pull-lab: error: kubeconfig {tmp_path / 'none'} does not exist (pass an existing file)"],
    )
