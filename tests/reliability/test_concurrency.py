"""Two lab runs on one machine at once, with different names, both pass and collide nowhere:
cluster names, networks, subnets, registry names and addresses, cache (held under a lock)."""

from __future__ import annotations

import uuid

from tests.reliability.conftest import leftovers, start_pull_lab


def test_two_runs_at_once_both_pass(lab_images, lab_settings, tmp_path):
    names = [f"pull-lab-con{i}-{uuid.uuid4().hex[:4]}" for i in (1, 2)]
    runs = [
        start_pull_lab(
            "run",
            "registry-catalog",
            "wrong-password",
            "node-ca-no-creds",
            "--report-dir",
            str(tmp_path / name),
            env={"PULL_LAB_CLUSTER_NAME": name, "PULL_LAB_CACHE_DIR": str(lab_settings.cache_dir)},
        )
        for name in names
    ]
    codes = [run.finish(timeout=900) for run in runs]
    assert codes == [0, 0], "\n\n".join(run.text[-2500:] for run in runs)
    for name in names:
        assert leftovers(name, lab_settings.cache_dir) == []
