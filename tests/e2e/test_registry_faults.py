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


def test_registry_that_exits_at_start_is_a_clear_error(
    lab_cluster, lab_images, lab_settings, lab_pki, tmp_path
):
    name = f"{lab_settings.cluster_name}-broken"
    spec = RegistrySpec(
        name=name,
        image=lab_images.registry_image,
        network=lab_settings.network_name,
        run_id=lab_settings.run_id,
    )
    with pytest.raises(LabError, match=rf"registry {name} exited while starting.*missing\.crt"):
        BrokenRegistry(spec, lab_pki, tmp_path / "reg").start()
    left = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout.strip() == ""
