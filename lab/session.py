"""A lab that is up: the cluster plus its seeded registries, as `pull-lab up` leaves it.

The state file (0600, in the cluster's state dir) tells `status` and `down` what was made.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from lab.cluster import ClusterSpec, LabCluster
from lab.credentials import new_password, register_known
from lab.errors import LabError
from lab.kube import api_client, wait_cluster_usable
from lab.offline.build import LabImages, build_all
from lab.offline.cache import BuildCache
from lab.pki import LabPKI, write_private
from lab.registry import LabRegistry, RegistrySpec, seed
from lab.settings import Settings

SEED_REPO = "lab/busybox"
SEED_TAG = "1.0"


@dataclass(frozen=True)
class RegistryState:
    name: str
    in_cluster: str
    host_address: str
    ca_file: str
    credentials_file: str
    mtls: bool


def cluster_spec(settings: Settings, images: LabImages) -> ClusterSpec:
    return ClusterSpec(
        name=settings.cluster_name,
        node_image=settings.kind_image or images.node_image,
        kind_bin=images.kind_bin,
        kubectl_bin=images.kubectl_bin,
        state_dir=settings.state_dir,
        network=settings.network_name,
        run_id=settings.run_id,
        default_cni=images.source == "upstream",
    )


def registry_specs(settings: Settings, image: str) -> list[RegistrySpec]:
    """The lab's standing registries: the tutorial's (basic auth) and one that also wants mTLS.
    Each gets a fresh random password, never the tutorial's published one."""
    name, network, run_id = settings.cluster_name, settings.network_name, settings.run_id
    return [
        RegistrySpec(
            name=f"{name}-registry{suffix}",
            image=image,
            network=network,
            run_id=run_id,
            users={"foo": new_password("foo")},
            index=index,
            mtls=mtls,
        )
        for index, (suffix, mtls) in enumerate((("", False), ("-mtls", True)))
    ]


def _register_saved_credentials(path: Path) -> None:
    """A password `pull-lab up` made in another process, read back here: this process masks it
    too (its masker never saw it made)."""
    try:
        creds = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # status still describes the lab; the file's absence is not a secret
    if creds.get("password"):
        register_known(str(creds.get("username") or ""), str(creds["password"]))


class LabSession:
    def __init__(self, settings: Settings, out: TextIO = sys.stderr) -> None:
        self.settings = settings
        self.out = out

    @property
    def state_file(self) -> Path:
        return self.settings.state_dir / "lab.json"

    def _say(self, text: str) -> None:
        print(f"[up] {text}", file=self.out, flush=True)

    def up(self) -> dict:
        """Build, create the cluster and registries; on any failure remove what this call made."""
        images, _ = build_all(
            self.settings.images, BuildCache(self.settings.cache_dir), out=self.out
        )
        cluster = LabCluster(cluster_spec(self.settings, images))
        existed = cluster.exists()
        if existed and self.state_file.exists():
            state = json.loads(self.state_file.read_text())
            if all(LabRegistry.find(r["name"]) for r in state["registries"]):
                self._say(f"lab {cluster.name} is already up")
                return state
        self._say(f"cluster {cluster.name}: " + ("reusing" if existed else "creating"))
        try:
            return self._up(cluster, images)
        except BaseException:
            if not existed:
                from lab.cleanup import remove_lab_resources

                remove_lab_resources(self.settings, out=self.out)
            raise

    def _up(self, cluster: LabCluster, images: LabImages) -> dict:
        cluster.create()
        if images.source == "upstream":
            cluster.load_image(images.preloaded_image)  # the official node has no lab image
        wait_cluster_usable(api_client(cluster.kubeconfig_path))
        self._say(f"cluster {cluster.name}: node Ready, default service account present")
        pki = LabPKI.create()
        registries = []
        for spec in registry_specs(self.settings, images.registry_image):
            workdir = self.settings.state_dir / "registries" / spec.name
            existing = LabRegistry.find(spec.name)
            if existing:
                raise LabError(
                    f"a container named {spec.name} already exists",
                    f"run `pull-lab down --name {self.settings.cluster_name}` first",
                )
            reg = LabRegistry(spec, pki, workdir).start()
            digest = seed(reg, images.workload_image, SEED_REPO, SEED_TAG)
            self._say(
                f"registry {spec.host}: ready on {reg.url}, "
                f"seeded {SEED_REPO}:{SEED_TAG} {digest[:19]}"
            )
            creds = workdir / "credentials.json"
            user, password = reg.credentials
            write_private(creds, json.dumps({"username": user, "password": password}).encode())
            registries.append(
                RegistryState(
                    spec.name,
                    spec.host,
                    reg.url.removeprefix("https://"),
                    str(reg.ca_file),
                    str(creds),
                    spec.mtls,
                )
            )
        state = {
            "cluster": cluster.name,
            "kubeconfig": str(cluster.kubeconfig_path),
            "images": self.settings.images,
            "kubernetes": images.kubernetes_version,
            "run_id": self.settings.run_id,
            "registries": [asdict(r) for r in registries],
        }
        write_private(self.state_file, json.dumps(state, indent=2).encode())
        return state

    def status(self) -> dict:
        if not self.state_file.exists():
            raise LabError(
                f"no lab is up for cluster {self.settings.cluster_name}", "run `pull-lab up` first"
            )
        state = json.loads(self.state_file.read_text())
        for reg in state["registries"]:
            _register_saved_credentials(Path(reg["credentials_file"]))
        return state

    def describe_text(self, state: dict | None = None) -> str:
        state = state or self.status()
        lines = [
            f"cluster:    {state['cluster']} "
            f"(Kubernetes {state['kubernetes']}, images: {state['images']})",
            f"kubeconfig: export KUBECONFIG={state['kubeconfig']}",
        ]
        for reg in state["registries"]:
            lines += [
                f"registry:   {reg['in_cluster']}"
                + ("  (mTLS: client certificate required)" if reg["mtls"] else ""),
                f"  from this host: https://{reg['host_address']}  CA: {reg['ca_file']}",
                f"  credentials:    {reg['credentials_file']} (0600)",
                f'  try: curl --cacert {reg["ca_file"]} -u "$(jq -r \'.username+":"+.password\' '
                f'{reg["credentials_file"]})" https://{reg["host_address"]}/v2/_catalog',
            ]
        return "\n".join(lines)
