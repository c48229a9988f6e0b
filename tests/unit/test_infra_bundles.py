"""Source bundles: shared/ copied in, content-hashed, so unchanged code is not redeployed."""

from __future__ import annotations

import shutil
from pathlib import Path

from cartwise_infra.bundles import function_bundle, runtime_bundle
from tests.unit.pulumi_harness import ROOT, build, system_build


def copy_of_repository(tmp: Path) -> Path:
    root = tmp / "repo"
    root.mkdir()
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, root / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "shared", root / "shared", ignore=ignore)
    shutil.copytree(ROOT / "functions", root / "functions", ignore=ignore)
    return root


def test_function_bundle_holds_its_folder_at_the_root_and_shared() -> None:
    bundle = function_bundle(ROOT, "ingest_events")
    assert bundle.files["main.py"] == (ROOT / "functions/ingest_events/main.py").read_bytes()
    assert "functions/ingest_events/main.py" in bundle.files
    assert "shared/system/resources.py" in bundle.files
    assert "shared/platform/clients.py" in bundle.files
    assert not [p for p in bundle.files if "__pycache__" in p or p.endswith(".pyc")]
    assert not [p for p in bundle.files if p.startswith("functions/experiences/")]
    requirements = bundle.files["requirements.txt"].decode().splitlines()
    assert requirements[0] == "-c constraints.txt"
    assert any(line.startswith("functions-framework") for line in requirements)
    assert not any(line.startswith("pulumi") for line in requirements)


def test_bundle_hash_changes_with_the_code_it_holds_only(tmp_path: Path) -> None:
    root = copy_of_repository(tmp_path)
    before = function_bundle(root, "ingest_events")
    assert function_bundle(root, "ingest_events").object_name == before.object_name
    # Another function's code: not in this bundle, same hash.
    (root / "functions/experiences/main.py").write_text("# changed\n")
    assert function_bundle(root, "ingest_events").digest == before.digest
    # shared/ is in every bundle: a change there changes the hash.
    with (root / "shared/ingestion/service.py").open("a") as file:
        file.write("# changed\n")
    after = function_bundle(root, "ingest_events")
    assert after.digest != before.digest
    assert after.object_name == f"ingest_events-{after.digest}.zip"


def test_runtime_image_bundle_holds_every_function_and_a_dockerfile() -> None:
    bundle = runtime_bundle(ROOT)
    assert "functions/decide_events/worker.py" in bundle.files
    assert "shared/decisions/service.py" in bundle.files
    assert b"pip install" in bundle.files["Dockerfile"]


def test_unchanged_code_deploys_the_same_objects_and_image() -> None:
    """Two runs of the program name the same bundles: nothing to redeploy."""
    program, again = system_build(), build()
    names = {o.inputs["name"] for o in program.of("bucketObject:BucketObject")}
    assert names == {o.inputs["name"] for o in again.of("bucketObject:BucketObject")}
    assert names == {
        *(
            f"functions/{function_bundle(ROOT, f.name).object_name}"
            for f in program.system.functions
        ),
        f"runtime/{runtime_bundle(ROOT).object_name}",
    }
    (image_build,) = program.of("local:Command")
    assert image_build.inputs["triggers"] == [runtime_bundle(ROOT).digest]
