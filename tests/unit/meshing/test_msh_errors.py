"""Broken mesh files: every reader error is a clear error naming the file (exit 2 in the CLI)."""

import pytest
from helpers import REPO

from tumorpde.cli import main
from tumorpde.meshing.msh import MshError, read_msh, read_physical_names

GOOD = REPO / "meshes" / "brain_phantom.msh"


@pytest.fixture
def broken(tmp_path):
    data = GOOD.read_bytes()
    files = {
        "trunc.msh": data[: len(data) // 3],
        "garbage.msh": b"\x00\xff\x10" * 300,
        "meta.json": b'{"cells": 1}',
        "names.msh": b"$MeshFormat\n4.1 0 8\n$EndMeshFormat\n$PhysicalNames\nfive\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("trunc.msh", "truncated or corrupt"),
        ("garbage.msh", "no $MeshFormat header"),
        ("meta.json", "not a gmsh .msh file (suffix .json)"),
        ("names.msh", "broken $PhysicalNames"),
    ],
)
def test_reader_errors_name_the_file(broken, name, fragment):
    path = broken / name
    reader = read_physical_names if name == "names.msh" else read_msh
    with pytest.raises(MshError, match=r".*") as exc:
        reader(path)
    assert str(path) in str(exc.value) and fragment in str(exc.value)


@pytest.mark.serial
@pytest.mark.parametrize("name", ["trunc.msh", "garbage.msh", "meta.json", "."])
def test_mesh_info_exits_2(broken, name, capsys):
    assert main(["mesh", "info", str(broken / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


@pytest.mark.parametrize("name", ["g.nii.gz", "g.nii", "g.nrrd", "g.npy"])
def test_damaged_label_images_are_clear_errors(tmp_path, capsys, name):
    from tumorpde.cli import main

    image = tmp_path / name
    image.write_bytes(b"\x93NUMPY garbage " * 20 if name.endswith(".npy") else b"garbage" * 50)
    out = tmp_path / "out.msh"
    code = main(
        ["mesh", "from-labels", str(image), "--labels", "1=a", "--spacing", "1", "-o", str(out)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert name in err and "cannot read the label image" in err and "Traceback" not in err
    assert not out.exists()
