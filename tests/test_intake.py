"""Intake: discovery at parse time and structure triage (one reason per bad input)."""

from __future__ import annotations

import pytest
from ase.build import bulk

from phonion.errors import ConfigError, StructureRejected
from phonion.intake import describe, discover, read_structure, triage
from phonion.settings import IntakeSettings

from conftest import BROKEN_CIF, DEMO, KCL_POSCAR, PARTIAL_CIF


def test_demo_set_is_sodium_and_small():
    found = discover(DEMO)
    assert len(found.materials) >= 6 and not found.rejected
    for mid, path in found.materials.items():
        atoms = triage(read_structure(path), IntakeSettings())
        assert "Na" in atoms.get_chemical_symbols(), mid
        assert len(atoms) <= 8, mid
        assert "Source:" in path.read_text().splitlines()[1], f"{mid} cites no source"


def test_demo_cells_match_published_density():
    # independent check of the hand-written CIFs: X-ray densities (g/cm3) of NaCl and
    # cubic Na3SbS4 as published (2.165; 2.87 for a = 7.17 A)
    def density(name: str) -> float:
        return describe(read_structure(DEMO / name))["density_g_cm3"]

    assert density("NaCl.cif") == pytest.approx(2.165, abs=0.005)
    assert density("Na3SbS4-cubic.cif") == pytest.approx(2.87, abs=0.01)


def test_rocksalt_primitive_cell():
    prim = triage(read_structure(DEMO / "NaCl.cif"), IntakeSettings())
    assert len(prim) == 2
    assert prim.get_volume() == pytest.approx(5.6402**3 / 4, rel=1e-6)


def test_discover_rejects_duplicate_and_unsafe_ids(tmp_path):
    (tmp_path / "A.cif").write_text("x")
    (tmp_path / "A.vasp").write_text("x")
    (tmp_path / "B.cif").write_text("x")
    (tmp_path / "notes.txt").write_text("not a structure")
    table = tmp_path / "table.tsv"
    table.write_text("id\tpath\nC\tB.cif\nbad id\tB.cif\n../evil\tB.cif\n")
    found = discover(tmp_path, table)
    assert set(found.materials) == {"B", "C"}
    assert "duplicate id" in found.rejected["A"]
    assert "not a safe file name" in found.rejected["bad id"]
    assert "not a safe file name" in found.rejected["../evil"]


def test_discover_missing_folder_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="structures.folder"):
        discover(tmp_path / "nope")


@pytest.mark.parametrize("text, name, reason", [
    (BROKEN_CIF, "broken.cif", "unreadable"),
    (PARTIAL_CIF, "partial.cif", "partial occupancy"),
    ("", "empty.cif", "unreadable"),
])
def test_unreadable_and_partial_files_are_rejected(tmp_path, text, name, reason):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(StructureRejected, match=reason):
        read_structure(path)


def test_no_mobile_ion(tmp_path):
    path = tmp_path / "POSCAR-KCl"
    path.write_text(KCL_POSCAR)
    with pytest.raises(StructureRejected, match="no mobile ion Na"):
        triage(read_structure(path), IntakeSettings())
    # the same file is fine when K is the mobile ion
    assert len(triage(read_structure(path), IntakeSettings(mobile_ion="K"))) == 2


def test_overlapping_atoms():
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    atoms.positions[1] = atoms.positions[0] + [0.3, 0, 0]
    with pytest.raises(StructureRejected, match="overlapping atoms: two atoms 0.300"):
        triage(atoms, IntakeSettings())


def test_too_many_atoms():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (2, 2, 2)
    atoms.rattle(0.05, seed=3)  # breaks translational symmetry: 64-atom primitive cell
    with pytest.raises(StructureRejected, match="64 atoms in the primitive cell > "
                                                "structures.max_atoms = 40"):
        triage(atoms, IntakeSettings(max_atoms=40))
