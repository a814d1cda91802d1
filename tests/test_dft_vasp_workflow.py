"""The VASP path through Snakemake (issue 14), without VASP: the workflow's own rules run
with ``dft.engine: vasp``, stand-in POTCARs in ``PMG_VASP_PSP_DIR`` (tests/data/fake_potcars:
phonion writes real POTCAR files, not POTCAR.spec) and the fake VASP executable of
tests/fake_vasp.py as ``dft.vasp.command``. The fake asserts every run's inputs against seed
000's protocol and then puts real VASP outputs in place.

Real outputs exist only for the structures they were computed on, so the displaced supercells
must be theirs: after the workflow's own ``displace`` job, its result is replaced by the same
file holding phonopy's NaCl finite-displacement set (the 2×2×2 supercell of
``phonopy-NaCl-fd`` and its two displacements, whose real vasprun.xml the fake returns).
Everything downstream (``dft_forces``, the MLP's ``forces`` on the same supercells,
``dft_validation``, the campaign's validation table) is the workflow's, unchanged."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import DEMO, RIGID, SHARED_DATA, snakemake

FD = SHARED_DATA / "phonopy-NaCl-fd"
FAKE_VASP = Path(__file__).with_name("fake_vasp.py")
FAKE_POTCARS = Path(__file__).parent / "data" / "fake_potcars"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not FD.is_dir(), reason=f"no shared data at {SHARED_DATA}")]

#: seed 000 §2.2/§2.6 static-force protocol as the fake asserts it (test_dft_vasp.py has the
#: same table with its sources)
SEED000_STATIC = {"ENCUT": 520.0, "EDIFF": 1e-6, "IBRION": -1, "NSW": 0, "ISYM": 0,
                  "PREC": "Accurate", "LREAL": False, "ISMEAR": 0, "SIGMA": 0.05,
                  "LWAVE": False, "LCHARG": False, "ISPIN": 1}


def fd_displace(original: dict) -> tuple[dict, np.ndarray]:
    """``original`` (a displace.json of the workflow) with phonopy's NaCl finite-displacement
    set in place of the random one: the 8-atom cell as the primitive cell, dim 2×2×2, the
    two displacements. Returns it and the perfect supercell's fractional positions."""
    import phonopy
    from ase import Atoms

    from phonion.formats import atoms_to_dict

    ph = phonopy.load(FD / "phonopy_disp.yaml", produce_fc=False, log_level=0)
    unit, sc = ph.unitcell, ph.supercell
    as_atoms = [Atoms(c.symbols, cell=c.cell, scaled_positions=c.scaled_positions, pbc=True)
                for c in (unit, sc)]
    disps = np.zeros((len(ph.dataset["first_atoms"]), len(sc), 3))
    for k, d in enumerate(ph.dataset["first_atoms"]):
        disps[k, d["number"]] = d["displacement"]
    out = {**original, "primitive": atoms_to_dict(as_atoms[0]),
           "supercell": atoms_to_dict(as_atoms[1]), "unit_matrix": np.eye(3, dtype=int).tolist(),
           "dim": [2, 2, 2], "supercell_matrix": (2 * np.eye(3, dtype=int)).tolist(),
           "n_atoms_supercell": len(sc), "n_snapshots": len(disps),
           "displacements_A": disps.tolist()}
    return out, sc.scaled_positions


def zero_force_vasprun(source: Path, dest: Path) -> Path:
    """``source`` with every force set to zero: the output VASP gives for the undisplaced
    rock-salt supercell, whose forces vanish by symmetry (phonopy's example has no run of
    it, and the reference run is what the residual forces are taken from)."""
    text = source.read_text()
    zero = "<v>       0.00000000       0.00000000       0.00000000 </v>"

    def blank(m: re.Match) -> str:
        return re.sub(r"<v>[^<]*</v>", zero, m.group(0))

    dest.write_text(re.sub(r'<varray name="forces" >.*?</varray>', blank, text, flags=re.S))
    return dest


def test_vasp_forces_and_validation_through_snakemake(tmp_path, monkeypatch):
    from phonopy.file_IO import parse_FORCE_SETS

    folder = tmp_path / "structures"
    folder.mkdir()
    (folder / "NaCl.cif").write_text((DEMO / "NaCl.cif").read_text())
    fake = f"{sys.executable} {FAKE_VASP}"
    config = {**RIGID, "structures": {"folder": "structures"}, "md": {"enabled": False},
              "elastic": {"enabled": False},
              "dft": {"engine": "vasp", "validate": ["NaCl"],
                      "vasp": {"command": fake, "gamma_command": fake}}}
    monkeypatch.setenv("PMG_VASP_PSP_DIR", str(FAKE_POTCARS))
    spec_path = tmp_path / "fake_vasp.json"
    monkeypatch.setenv("FAKE_VASP_SPEC", str(spec_path))
    mat = tmp_path / "results/materials/NaCl"
    snakemake(tmp_path, "--cores", "2", "results/materials/NaCl/displace/displace.json",
              config=config)

    disp_file = mat / "displace/displace.json"
    disp, perfect = fd_displace(json.loads(disp_file.read_text()))
    disp_file.write_text(json.dumps(disp))
    displaced = [(perfect @ np.asarray(disp["supercell"]["cell_A"]) + u)
                 @ np.linalg.inv(np.asarray(disp["supercell"]["cell_A"]))
                 for u in np.asarray(disp["displacements_A"])]
    ref_out = zero_force_vasprun(FD / "vasprun.xml-001", tmp_path / "vasprun-ref.xml")
    cut = tmp_path / "vasprun-cut.xml"  # a run killed while writing its output
    text = (FD / "vasprun.xml-002").read_text()
    cut.write_text(text[: text.index('<varray name="forces" >') + 200])
    poscar = {"natoms": 64, "symbols": ["Na"] * 32 + ["Cl"] * 32, "atol": 1e-8}
    spec = {"incar": SEED000_STATIC, "potcar_symbols": ["Na_pv", "Cl"], "runs": {
        "ref": {"poscar": {**poscar, "frac_positions": perfect.tolist()},
                "outputs": {"vasprun.xml": str(ref_out)}},
        "000": {"poscar": {**poscar, "frac_positions": displaced[0].tolist()},
                "outputs": {"vasprun.xml": str(FD / "vasprun.xml-001")}},
        "001": {"poscar": {**poscar, "frac_positions": displaced[1].tolist()},
                "outputs": {"vasprun.xml": str(cut)}}}}
    spec_path.write_text(json.dumps(spec))

    # 1. snapshot 001's run dies mid-output: the stage fails with the reason, the material's
    # validation is skipped, the campaign goes on (exit 0)
    target = "results/materials/NaCl/dft_validation/dft_validation.json"
    snakemake(tmp_path, "--cores", "2", target, "results/campaign/validation.csv")
    res = json.loads((mat / "dft_forces/dft_forces.json").read_text())
    assert res["status"] == "failed" and "vasprun.xml truncated" in res["reason"], res
    assert "001" in res["reason"]
    val = json.loads((mat / "dft_validation/dft_validation.json").read_text())
    assert val["status"] == "skipped"
    seen = json.loads((mat / "dft_forces/runs/000/fake_vasp_runs.json").read_text())
    assert len(seen) == 1  # the fake accepted its inputs at the first try

    # 2. the run repaired (the fake now returns the complete output): a forced rerun of the
    # stage reuses ref and 000 and runs only 001
    spec["runs"]["001"]["outputs"] = {"vasprun.xml": str(FD / "vasprun.xml-002")}
    spec_path.write_text(json.dumps(spec))
    snakemake(tmp_path, "--cores", "2", target, "results/campaign/validation.csv",
              "--forcerun", "dft_forces")
    res = json.loads((mat / "dft_forces/dft_forces.json").read_text())
    assert res["status"] == "ok", res["reason"]
    assert res["engine"] == "vasp" and res["runs_reused"] == ["ref", "000"]
    assert res["runs_made"] == ["001"]
    # the real vasprun.xml files give FORCE_SETS, on phonopy's displaced supercells
    ref = parse_FORCE_SETS(filename=str(FD / "FORCE_SETS"))
    with h5py.File(mat / "dft_forces/forces.h5") as h5:
        forces, u = h5["forces_eV_A"][()], h5["displacements_A"][()]
    for k, first in enumerate(ref["first_atoms"]):
        np.testing.assert_allclose(forces[k], first["forces"], atol=1e-6, rtol=0)
        np.testing.assert_allclose(u[k, first["number"]], first["displacement"], atol=1e-12)
    # every run saw real POTCARs of the MP symbols (checked by the fake) and seed 000's INCAR
    potcar = (mat / "dft_forces/runs/001/POTCAR").read_text()
    assert potcar.count("TITEL") == 2 and "Na_pv" in potcar

    # 3. the MLP against the VASP forces: the workflow's validation on the same supercells
    val = json.loads((mat / "dft_validation/dft_validation.json").read_text())
    assert val["status"] == "ok", val["reason"]
    assert val["engine"] == "vasp" and val["n_snapshots"] == 2
    assert val["dft_stable"] and val["mlp_stable"] and val["stability_agrees"]
    assert 0 < val["force_rmse_meV_A"] < 3 * val["dft_force_rms_meV_A"]
    print({k: val[k] for k in ("force_rmse_meV_A", "dft_force_rms_meV_A", "band_rmse_THz")},
          val["by_temperature_K"])
    table = (tmp_path / "results/campaign/validation.csv").read_text().splitlines()
    assert table[1].startswith("NaCl,ok,")


ARGYRODITE = SHARED_DATA / "kinisi-Li6PS5Cl-aimd" / "XDATCAR.gz"


def test_vasp_aimd_killed_by_the_time_limit_continues_through_snakemake(tmp_path,
                                                                        monkeypatch):
    """AIMD with ``dft.engine: vasp`` through the workflow's ``aimd`` rule: the material is the
    first frame of kinisi's real Li6PS5Cl AIMD (416 atoms; SevenNet-0 relaxes and displaces it,
    loosely: the test is about the AIMD), whose XDATCAR the fake VASP replays (read as a frame
    every 2 fs step, as test_dft_vasp.py does). The first job is killed inside frame 81 (the
    fake SIGKILLs the phonion job, as a SLURM time limit does); the rerun continues from frame
    80 with velocities from the frames before it, the fake checks those inputs and writes
    frames 80…140, and the trajectory holds the real run's 140 steps, each once."""
    from phonion import formats
    from phonion.dft import vasp
    from phonion.geometry import unwrap

    full = vasp.read_xdatcar(ARGYRODITE)
    from ase import Atoms
    from ase.io import write

    folder = tmp_path / "structures"
    folder.mkdir()
    first = Atoms(full.symbols, cell=full.cells_A[0], scaled_positions=full.frac[0], pbc=True)
    write(folder / "Li6PS5Cl.vasp", first, format="vasp", direct=True)
    fake = f"{sys.executable} {FAKE_VASP}"
    config = {"structures": {"folder": "structures", "max_atoms": 500, "max_input_atoms": 500},
              "mobile_ion": "Li", "calculator": {"backend": "sevenn", "model": "7net-0"},
              "relax": {"fmax_eV_A": 5.0, "max_steps": 20},
              "phonons": {"min_atoms": 400, "max_atoms": 500, "fc2_cutoff_A": 3.0},
              "md": {"temperatures_K": [800]}, "elastic": {"enabled": False},
              "dft": {"engine": "vasp", "aimd": {"materials": ["Li6PS5Cl"],
                                                 "temperatures_K": [800], "steps": 140},
                      "vasp": {"command": fake, "gamma_command": fake, "aimd_potim_fs": 2.0}}}
    monkeypatch.setenv("PMG_VASP_PSP_DIR", str(FAKE_POTCARS))
    spec_path = tmp_path / "fake_vasp.json"
    monkeypatch.setenv("FAKE_VASP_SPEC", str(spec_path))
    seed000_aimd = {"ENCUT": 520.0, "EDIFF": 1e-6, "IBRION": 0, "MDALGO": 2, "SMASS": 0.0,
                    "ISIF": 2, "POTIM": 2.0, "TEBEG": 800.0, "TEEND": 800.0, "ISYM": 0,
                    "NBLOCK": 1, "ISPIN": 1}
    pos = unwrap(full.frac[77:80], full.cells_A[0])
    v80 = (3 * pos[2] - 4 * pos[1] + pos[0]) / (2 * 2.0)  # Å/fs at frame 80
    spec = {"kpoints": {"style": "Gamma", "kpts": [[1, 1, 1]]}, "runs": {
        "seg000": {"incar": {**seed000_aimd, "NSW": 140}, "poscar": {"natoms": 416},
                   "xdatcar_frames": {"source": str(ARGYRODITE), "first": 1, "last": 140,
                                      "cut_in_frame": 81},
                   "kill_job": True},
        "seg001": {"incar": {**seed000_aimd, "NSW": 61},
                   "poscar": {"natoms": 416, "frac_positions": full.frac[79].tolist(),
                              "velocities_A_fs": v80.tolist(), "vtol": 1e-6},
                   "xdatcar_frames": {"source": str(ARGYRODITE), "first": 80, "last": 140}}}}
    # the completed segment's vasprun.xml: 61 real ionic-step blocks (phonopy's NaCl run,
    # repeated; only their count and SCF convergence are read: energies come from a vasprun
    # only when it covers every frame, and seg000's was lost with the kill)
    from test_dft_vasp import md_vasprun

    md_vasprun(tmp_path, 61, 61)
    spec["runs"]["seg001"]["outputs"] = {"vasprun.xml": str(tmp_path / "vasprun.xml")}
    spec_path.write_text(json.dumps(spec))
    target = "results/materials/Li6PS5Cl/aimd/800K/aimd.json"
    killed = snakemake(tmp_path, "--cores", "2", target, config=config, check=False)
    assert killed.returncode != 0  # the job died: Snakemake says so
    run = tmp_path / "results/materials/Li6PS5Cl/aimd/800K/runs"
    assert not (tmp_path / target).exists() and (run / "seg000/XDATCAR").is_file()
    assert sorted(p.name for p in run.iterdir()) == ["seg000"]

    snakemake(tmp_path, "--cores", "2", target)
    res = json.loads((tmp_path / target).read_text())
    assert res["status"] == "ok", res["reason"]
    assert res["engine"] == "vasp" and res["segments"] == ["seg000", "seg001"]
    assert res["segments_made"] == ["seg001"] and res["continued_from_step"] == {"seg001": 80}
    assert res["n_frames"] == 140
    traj = formats.read_trajectory(tmp_path / "results/materials/Li6PS5Cl/aimd/800K"
                                   / "trajectory.h5")
    assert list(traj["step"]) == list(range(1, 141))
    whole = vasp.read_trajectory(ARGYRODITE, frame_dt_ps=0.002)
    np.testing.assert_allclose(traj["positions_A"], whole["positions_A"], atol=1e-6)
    assert traj["frame_dt_ps"] == pytest.approx(0.002)
    assert np.isnan(traj["potential_energy_eV"]).all()  # no energy where none was read
    # each segment's POTCAR: the MP symbols of its four elements, one each
    titles = (run / "seg001/POTCAR").read_text().count("TITEL")
    assert titles == 4
