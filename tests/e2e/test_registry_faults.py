"""A registry that cannot start says why in one line and leaves no container behind."""

from __future__ import annotations

import subprocess

import pytest

from lab.errors import LabError
from lab.registry import LabRegistry, RegistrySpec

pytestmark = pytest.mark.e2e


class BrokenRegistry(LabRegistry):
    """Its config points at a certificate that does not exist."""

    def _write_files(self) -> None:
        super()._write_files()
        config = self.workdir / "config.yml"
        config.write_text(config.read_text().replace("/lab/server.crt", "/lab/missing.crt"))


class BrokenRegistrySeenLate(BrokenRegistry):
    """The lab looks only after the container has already exited: the case CI once met,
    where a lookup that waits for "running" hid the cause behind a timeout."""

    def _start_container(self) -> None:
        super()._start_container()
        assert self.container is not None and self.container._container is not None
        self.container._container.wait(timeout=60)  # blocks until the container stops


@pytest.mark.parametrize("kind", [BrokenRegistry, BrokenRegistrySeenLate], ids=["early", "late"])
def test_registry_that_exits_at_start_is_a_clear_error(
    kind, lab_cluster, lab_images, lab_settings, lab_pki, tmp_path
):
    name = f"{lab_settings.cluster_name}-broken"
    spec = RegistrySpec(
        name=name,
        image=lab_images.registry_image,
        network=lab_settings.network_name,
        run_id=lab_settings.run_id,
    )
    with pytest.raises(LabError, match=rf"registry {name} exited while starting.*missing\.crt"):
        kind(spec, lab_pki, tmp_path / "reg").start()
    left = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout.strip() == ""
