"""Which cluster doctor talks to: kubeconfig files and a context, chosen the way kubectl does.

``--kubeconfig F`` is that one file. Otherwise ``$KUBECONFIG`` may name several files (``:``
between them), merged by the kubernetes client's own loader as kubectl merges them: the first
file to define a cluster, user or context wins. The current context is the first file's that
sets one (the Python client would take the last file's; kubectl takes the first), unless
``--context`` names another. Without ``-n``, the namespace is the context's, else ``default``.

>>> api, chosen = connect(kubeconfig=None, context="kind-lab")
>>> chosen.namespace
'default'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from lab.errors import LabError

NO_KUBECONFIG = LabError("no kubeconfig found", "pass --kubeconfig PATH or set KUBECONFIG")


@dataclass(frozen=True)
class Chosen:
    """The kubeconfig files read, the context used, and that context's namespace ("" if none)."""

    files: tuple[Path, ...]
    context: str
    namespace: str
    server: str

    @property
    def joined(self) -> str:
        return os.pathsep.join(str(f) for f in self.files)


def kubeconfig_files(
    kubeconfig: str | None, environ: dict[str, str] | None = None, home: Path | None = None
) -> tuple[Path, ...]:
    """The files to read, as kubectl picks them; the missing ones of $KUBECONFIG are skipped."""
    env = os.environ if environ is None else environ
    if kubeconfig:
        if not Path(kubeconfig).is_file():
            raise LabError(f"kubeconfig {kubeconfig} does not exist", "pass an existing file")
        return (Path(kubeconfig),)
    listed = [p for p in (env.get("KUBECONFIG") or "").split(os.pathsep) if p]
    if not listed:
        listed = [str((home or Path.home()) / ".kube" / "config")]
    files = tuple(Path(p).expanduser() for p in listed if Path(p).expanduser().is_file())
    if not files:
        raise NO_KUBECONFIG
    return files


def _first_current_context(files: tuple[Path, ...]) -> str:
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise LabError(f"cannot read kubeconfig {path}: {exc}".splitlines()[0]) from exc
        if isinstance(data, dict) and data.get("current-context"):
            return str(data["current-context"])
    return ""


def choose(files: tuple[Path, ...], context: str | None) -> Chosen:
    """The context to use, checked against the merged kubeconfig."""
    joined = os.pathsep.join(str(f) for f in files)
    try:
        contexts, _ = config.list_kube_config_contexts(config_file=joined)
    except ConfigException as exc:
        raise LabError(f"cannot read kubeconfig {joined}: {exc}".splitlines()[0]) from exc
    by_name = {c["name"]: c for c in contexts or []}
    name = context or _first_current_context(files)
    if not name:
        raise LabError(f"kubeconfig {joined} has no current context", "pass --context NAME")
    if name not in by_name:
        known = ", ".join(sorted(by_name)) or "none"
        raise LabError(f"context {name!r} is not in kubeconfig {joined}", f"contexts: {known}")
    namespace = str((by_name[name].get("context") or {}).get("namespace") or "")
    return Chosen(files, name, namespace, "")


def connect(kubeconfig: str | None, context: str | None) -> tuple[client.ApiClient, Chosen]:
    """An API client for the chosen context (the kubeconfig files are never written to)."""
    chosen = choose(kubeconfig_files(kubeconfig), context)
    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=chosen.joined,
            context=chosen.context,
            client_configuration=configuration,
            persist_config=False,
        )
    except ConfigException as exc:
        raise LabError(
            f"context {chosen.context!r} in {chosen.joined} is not usable: {exc}".splitlines()[0]
        ) from exc
    configuration.retries = 1  # an unreachable API server is an answer, not a reason to wait
    return client.ApiClient(configuration), Chosen(
        chosen.files, chosen.context, chosen.namespace, str(configuration.host)
    )
