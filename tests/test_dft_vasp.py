"""The VASP engine without VASP: inputs asserted against seed 000's protocol by a fake VASP
executable (tests/fake_vasp.py) that then puts real VASP outputs in place; real vasprun.xml
and XDATCAR files of ../shared/data parsed into phonion's formats; failed, unconverged and
truncated runs reported as failures; an AIMD run cut by a wall-time limit continued and
concatenated with every step once."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from phonion import formats
from phonion.dft import DFTRunFailed, forceset_from_runs, get_engine, vasp
from phonion.errors import ConfigError
from phonion.geometry import symbols_of

from conftest import SHARED_DATA

FD = SHARED_DATA / "phonopy-NaCl-fd"
ARGYRODITE = SHARED_DATA / "kinisi-Li6PS5Cl-aimd" / "XDATCAR.gz"
NACL_XDATCAR = SHARED_DATA / "phonopy-NaCl-xdatcar" / "XDATCAR"
FAKE_VASP = Path(__file__).with_name("fake_vasp.py")

pytestmark = pytest.mark.skipif(not FD.is_dir(), reason=f"no shared data at {SHARED_DATA}")

#: seed 000 §2.6 (AIMD): PBE, ENCUT 520 eV, EDIFF 1e-6 eV, Γ point, NVT Nosé–Hoover, 800 K,
#: 1.5 fs; plus what VASP needs for it (IBRION 0, MDALGO 2 + SMASS, ISIF < 3) and phonion's
#: choices (ISYM 0, a frame every step, no WAVECAR/CHGCAR).
SEED000_AIMD = {"ENCUT": 520.0, "EDIFF": 1e-6, "IBRION": 0, "MDALGO": 2, "SMASS": 0.0,
                "ISIF": 2, "POTIM": 1.5, "TEBEG": 800.0, "TEEND": 800.0, "ISYM": 0,
                "NBLOCK": 1, "LWAVE": False, "LCHARG": False, "ISPIN": 1,
                "EDIFF_PER_ATOM": None, "MAGMOM": None}
#: static forces on displaced supercells (seed 000 §2.2, "high-accuracy self-consistent
#: DFT": the §2.6 cutoff and convergence, accurate precision, no symmetrisation).
SEED000_STATIC = {"ENCUT": 520.0, "EDIFF": 1e-6, "IBRION": -1, "NSW": 0, "ISYM": 0,
                  "PREC": "Accurate", "LREAL": False, "ADDGRID": True, "ISMEAR": 0,
                  "SIGMA": 0.05, "LWAVE": False, "LCHARG": False, "ISPIN": 1, "MAGMOM": None}
GAMMA = {"style": "Gamma", "kpts": [[1, 1, 1]]}


def nacl_fd():
    """The NaCl supercell and displacements of phonopy's finite-displacement example."""
    import phonopy

    ph = phonopy.load(FD / "phonopy_disp.yaml", produce_fc=False, log_level=0)
    sc = ph.supercell
    atoms = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
    disps = np.zeros((len(ph.dataset["first_atoms"]), len(atoms), 3))
    for k, d in enumerate(ph.dataset["first_atoms"]):
        disps[k, d["number"]] = d["displacement"]
    return atoms, disps


def fake_run(directory: Path, spec: dict, settings=None, monkeypatch=None,
             command: list[str] | str | None = None) -> None:
    """phonion.dft.vasp.run (custodian) with the fake VASP and ``spec`` as its
    expectations."""
    spec_path = directory / "fake_vasp.json"
    spec_path.write_text(json.dumps(spec))
    monkeypatch.setenv("FAKE_VASP_SPEC", str(spec_path))
    vasp.run(directory, settings or vasp.VaspSettings(max_errors=2),
             command=command or [sys.executable, str(FAKE_VASP)], poll_s=0.05)


def incar_of(directory: Path) -> dict:
    from pymatgen.io.vasp.inputs import Incar

    return dict(Incar.from_file(directory / "INCAR"))


# --- inputs -------------------------------------------------------------------------------

def test_aimd_inputs_follow_seed000(tmp_path):
    from fake_vasp import check_inputs

    atoms = bulk("NaCl", "rocksalt", a=5.69, cubic=True)
    vasp.write_aimd(atoms, tmp_path, vasp.VaspSettings(), 800.0, 2000, potcar_spec=True)
    spec = {"incar": {**SEED000_AIMD, "NSW": 2000}, "kpoints": GAMMA,
            "poscar": {"natoms": 8, "symbols": ["Na"] * 4 + ["Cl"] * 4},
            "potcar_symbols": ["Na_pv", "Cl"]}
    assert check_inputs(spec, tmp_path) == []
    # the same fake rejects what seed 000 does not do
    assert check_inputs({"incar": {"ENCUT": 400.0, "POTIM": 2.0}}, tmp_path) == [
        "INCAR ENCUT = 520.0, expected 400.0", "INCAR POTIM = 1.5, expected 2.0"]


def test_static_and_relax_inputs_follow_seed000(tmp_path):
    from fake_vasp import check_inputs

    atoms = bulk("NaCl", "rocksalt", a=5.69, cubic=True)  # Na Cl Na Cl …: grouped in POSCAR
    s = vasp.VaspSettings()
    vasp.write_static(atoms, tmp_path / "static", s, potcar_spec=True)
    assert check_inputs({"incar": SEED000_STATIC, "potcar_symbols": ["Na_pv", "Cl"],
                         "poscar": {"frac_positions": atoms.get_scaled_positions()[
                             vasp.species_order(atoms)].tolist()}},
                        tmp_path / "static") == []
    order = json.loads((tmp_path / "static" / vasp.ORDER_FILE).read_text())["poscar_to_input"]
    assert order == [0, 2, 4, 6, 1, 3, 5, 7]
    vasp.write_relax(atoms, tmp_path / "relax", s, potcar_spec=True)
    assert check_inputs({"incar": {"ENCUT": 520.0, "EDIFF": 1e-6, "IBRION": 2, "ISIF": 3,
                                   "NSW": 99, "EDIFFG": -0.01, "LWAVE": False}},
                        tmp_path / "relax") == []
    # every INCAR choice is a setting, and the settings survive their JSON form
    s2 = vasp.VaspSettings.from_json(vasp.VaspSettings(
        encut_eV=600.0, ediff_eV=1e-7, aimd_potim_fs=2.0, aimd_smass=1.0,
        potcar_symbols={"Na": "Na_sv"}).to_json())
    vasp.write_aimd(atoms, tmp_path / "md", s2, 600.0, 10, potcar_spec=True)
    inc = incar_of(tmp_path / "md")
    assert (inc["ENCUT"], inc["EDIFF"], inc["POTIM"], inc["SMASS"], inc["TEBEG"]) == (
        600.0, 1e-7, 2.0, 1.0, 600.0)
    assert (tmp_path / "md" / "POTCAR.spec").read_text().split() == ["Na_sv", "Cl"]
    with pytest.raises(ConfigError, match="ISIF < 3"):
        vasp.write_aimd(atoms, tmp_path / "npt", vasp.VaspSettings(aimd_isif=3), 800, 10,
                        potcar_spec=True)


def test_potcars_need_pmg_vasp_psp_dir(tmp_path, monkeypatch):
    from pymatgen.core import SETTINGS

    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    monkeypatch.delitem(SETTINGS, "PMG_VASP_PSP_DIR", raising=False)
    with pytest.raises(ConfigError, match="PMG_VASP_PSP_DIR"):
        vasp.write_static(bulk("NaCl", "rocksalt", a=5.69), tmp_path, vasp.VaspSettings())
    assert not (tmp_path / "INCAR").exists()
    # set, but without the chosen POTCAR: the error names the symbol and the settings
    (tmp_path / "psp").mkdir()
    monkeypatch.setitem(SETTINGS, "PMG_VASP_PSP_DIR", str(tmp_path / "psp"))
    with pytest.raises(ConfigError, match="Na_pv.*potcar_symbols"):
        vasp.write_static(bulk("NaCl", "rocksalt", a=5.69), tmp_path / "run",
                          vasp.VaspSettings())


# --- static forces through the fake VASP ------------------------------------------------------

def test_real_vaspruns_reproduce_force_sets(tmp_path, monkeypatch):
    """Inputs written for phonopy's two displaced NaCl supercells, checked by the fake VASP
    against the protocol and the displaced positions, run under custodian; the two real
    vasprun.xml it puts in place give FORCE_SETS's forces in a forces.h5."""
    from phonopy.file_IO import parse_FORCE_SETS

    atoms, disps = nacl_fd()
    engine = get_engine("vasp")
    runs = []
    for k, disp in enumerate(disps, start=1):
        d = tmp_path / f"disp-{k:03d}"
        displaced = atoms.copy()
        displaced.positions += disp
        engine.write_static(displaced, d, vasp.VaspSettings(), potcar_spec=True)
        spec = {"incar": SEED000_STATIC, "potcar_symbols": ["Na_pv", "Cl"],
                "poscar": {"natoms": 64, "frac_positions": displaced.get_scaled_positions(
                    wrap=False).tolist()},
                "outputs": {"vasprun.xml": str(FD / f"vasprun.xml-{k:03d}")}}
        fake_run(d, spec, monkeypatch=monkeypatch)
        assert engine.check(d) == (True, "")
        runs.append(d)
    fs = forceset_from_runs(engine, atoms, disps, runs)
    formats.write_forceset(tmp_path / "forces.h5", fs)
    back = formats.read_forceset(tmp_path / "forces.h5")
    ref = parse_FORCE_SETS(filename=str(FD / "FORCE_SETS"))
    for k, first in enumerate(ref["first_atoms"]):
        np.testing.assert_allclose(back.forces_eV_A[k], first["forces"], atol=1e-6, rtol=0)
        np.testing.assert_allclose(back.displacements_A[k, first["number"]],
                                   first["displacement"], atol=1e-12)
    np.testing.assert_allclose(back.energies_eV, [-216.82820693, -216.82817843], atol=1e-8)


def test_forces_come_back_in_input_order(tmp_path, monkeypatch):
    """Atoms given interleaved (Na Cl Na Cl …) are grouped in POSCAR, which then is the
    supercell of the real vasprun.xml (32 Na, then 32 Cl, each in order); its forces come back
    in the order of the input atoms."""
    atoms, _ = nacl_fd()
    perm = np.ravel(np.column_stack([np.arange(32), np.arange(32, 64)]))  # 0, 32, 1, 33, …
    assert (vasp.species_order(atoms[perm]) == np.argsort(perm)).all()
    vasp.write_static(atoms[perm], tmp_path, vasp.VaspSettings(), potcar_spec=True)
    fake_run(tmp_path, {"outputs": {"vasprun.xml": str(FD / "vasprun.xml-001")}},
             monkeypatch=monkeypatch)
    forces, _ = vasp.read_forces(tmp_path)
    direct, _ = vasp.read_forces(_as_run(tmp_path))  # no order file: POSCAR order
    np.testing.assert_array_equal(forces, direct[perm])


def _as_run(tmp_path: Path) -> Path:
    d = tmp_path / "plain"
    d.mkdir()
    (d / "vasprun.xml").write_bytes((FD / "vasprun.xml-001").read_bytes())
    return d


def test_fake_vasp_refuses_inputs_off_protocol(tmp_path, monkeypatch):
    """A run whose INCAR is not seed 000's fails (the fake exits non-zero, custodian stops)
    and nothing is parsed as a result."""
    atoms, _ = nacl_fd()
    vasp.write_static(atoms, tmp_path, vasp.VaspSettings(encut_eV=400.0), potcar_spec=True)
    with pytest.raises(DFTRunFailed, match="custodian gave up"):
        fake_run(tmp_path, {"incar": SEED000_STATIC,
                            "outputs": {"vasprun.xml": str(FD / "vasprun.xml-001")}},
                 monkeypatch=monkeypatch)
    assert not (tmp_path / "vasprun.xml").exists()
    assert "ENCUT = 400.0, expected 520.0" in (tmp_path / "std_err.txt").read_text()
    ok, why = vasp.check(tmp_path)
    assert not ok and "no vasprun.xml" in why


def test_run_command_never_reaches_a_shell(tmp_path, monkeypatch):
    argv = vasp.command_argv("srun -n 4 vasp_gam; touch pwned $(touch pwned2)")
    assert argv == ["srun", "-n", "4", "vasp_gam;", "touch", "pwned", "$(touch", "pwned2)"]
    atoms, _ = nacl_fd()
    vasp.write_static(atoms, tmp_path, vasp.VaspSettings(), potcar_spec=True)
    cmd = f"{sys.executable} {FAKE_VASP} ; touch pwned $(touch pwned2)"
    fake_run(tmp_path, {"outputs": {"vasprun.xml": str(FD / "vasprun.xml-001")}},
             monkeypatch=monkeypatch, command=cmd)
    assert not any(p.name.startswith("pwned") for p in tmp_path.iterdir())
    with pytest.raises(ConfigError, match="not found"):
        vasp.run(tmp_path, vasp.VaspSettings(command="no-such-vasp-binary"), poll_s=0.05)


# --- failed, unconverged and truncated runs -----------------------------------------------

def test_truncated_vasprun_is_a_failure(tmp_path):
    text = (FD / "vasprun.xml-001").read_bytes()
    (tmp_path / "vasprun.xml").write_bytes(text[: len(text) // 2])
    ok, why = vasp.check(tmp_path)
    assert not ok and "truncated" in why, why
    with pytest.raises(DFTRunFailed, match="truncated"):
        vasp.read_forces(tmp_path)
    engine = get_engine("vasp")
    with pytest.raises(DFTRunFailed, match="truncated"):  # one failed run fails a force set
        forceset_from_runs(engine, Atoms("Na64", cell=[10] * 3, pbc=True),
                           np.zeros((2, 64, 3)), [_as_run(tmp_path), tmp_path])
    # cut just before the closing tag: every ionic step is there, the run still is not done
    (tmp_path / "vasprun.xml").write_bytes(text[: text.rindex(b"</modeling>")])
    assert not vasp.check(tmp_path)[0]


def unconverged_copy(directory: Path) -> None:
    """vasprun.xml-001 whose SCF used all of NELM (23 electronic steps, NELM set to 23)."""
    text = (FD / "vasprun.xml-001").read_text(encoding="latin-1")
    old = '<i type="int" name="NELM">    60</i>'
    assert text.count(old) == 1
    (directory / "vasprun.xml").write_text(text.replace(old, old.replace("60", "23")),
                                           encoding="latin-1")


def test_unconverged_scf_is_a_failure(tmp_path, monkeypatch):
    d = tmp_path / "plain"
    d.mkdir()
    unconverged_copy(d)
    ok, why = vasp.check(d)
    assert not ok and why.startswith("electronic SCF not converged: 23 steps reached NELM 23")
    with pytest.raises(DFTRunFailed, match="not converged"):
        vasp.read_forces(d)
    # under custodian: UnconvergedErrorHandler changes ALGO and reruns, the (fake) VASP
    # stays unconverged, custodian gives up after max_errors, phonion reports the failure
    run = tmp_path / "run"
    atoms, _ = nacl_fd()
    vasp.write_static(atoms, run, vasp.VaspSettings(), potcar_spec=True)
    unconverged_copy(tmp_path)
    with pytest.raises(DFTRunFailed):
        fake_run(run, {"outputs": {"vasprun.xml": str(tmp_path / "vasprun.xml")}},
                 monkeypatch=monkeypatch)
    seen = json.loads((run / "fake_vasp_runs.json").read_text())
    assert len(seen) >= 2 and seen[-1].get("ALGO") != seen[0].get("ALGO")


def md_vasprun(directory: Path, n_steps: int, nsw: int, ibrion: int = 0) -> None:
    """A vasprun.xml of an MD run (or a relaxation: ``ibrion``) made of real ionic-step
    blocks (those of vasprun.xml-001, repeated) with NSW ``nsw``."""
    text = (FD / "vasprun.xml-001").read_text(encoding="latin-1")
    a, b = text.index("<calculation>"), text.index("</calculation>") + len("</calculation>")
    text = text[:a] + "\n".join([text[a:b]] * n_steps) + text[b:]
    text = text.replace('<i type="int" name="IBRION">    -1</i>',
                        f'<i type="int" name="IBRION">{ibrion:6d}</i>')
    text = text.replace('<i type="int" name="NSW">     0</i>',
                        f'<i type="int" name="NSW">{nsw:6d}</i>')
    (directory / "vasprun.xml").write_text(text, encoding="latin-1")


def test_md_run_cut_short_is_reported(tmp_path):
    md_vasprun(tmp_path, 3, 3)
    assert vasp.scan_vasprun(tmp_path / "vasprun.xml").parameters["IBRION"] == 0
    assert vasp.check(tmp_path) == (True, "")
    md_vasprun(tmp_path, 3, 10)
    ok, why = vasp.check(tmp_path)
    assert not ok and why == "MD ionic loop cut: 3 of NSW 10 steps"
    text = (tmp_path / "vasprun.xml").read_bytes()
    (tmp_path / "vasprun.xml").write_bytes(text[: text.rindex(b"<calculation>") + 300])
    ok, why = vasp.check(tmp_path)
    assert not ok and why.startswith("MD run cut after 2 of NSW 10 steps"), why


def test_relaxation_that_used_all_steps_is_a_failure(tmp_path):
    md_vasprun(tmp_path, 3, 3, ibrion=2)
    ok, why = vasp.check(tmp_path)
    assert not ok and why.startswith("relaxation not converged: all NSW 3 ionic steps used")
    md_vasprun(tmp_path, 3, 10, ibrion=2)  # stopped before NSW: EDIFFG reached
    assert vasp.check(tmp_path) == (True, "")


# --- trajectories ----------------------------------------------------------------------------

def test_xdatcars_load_as_trajectories():
    from ase.io import read

    t = vasp.read_trajectory(ARGYRODITE, frame_dt_ps=0.1, temperature_K=700.0)
    symbols = symbols_of(t["numbers"])
    assert t["positions_A"].shape == (140, 416, 3)
    assert [int((symbols == e).sum()) for e in ("Li", "Cl", "S", "P")] == [192, 32, 160, 32]
    assert t["frame_dt_ps"] == pytest.approx(0.1) and list(t["step"]) == list(range(1, 141))
    # the same frames as ASE reads them, unwrapped the same way as phonion's reader
    ref = formats.read_any_trajectory(ARGYRODITE, frame_dt_ps=0.1)
    np.testing.assert_allclose(t["positions_A"], ref["positions_A"], atol=1e-6)
    np.testing.assert_allclose(t["velocities_A_ps"], ref["velocities_A_ps"], atol=1e-4)
    n = vasp.read_trajectory(NACL_XDATCAR, frame_dt_ps=0.05)
    frames = read(NACL_XDATCAR, index=":")
    assert n["positions_A"].shape == (2, 512, 3) and list(n["step"]) == [50, 100]
    np.testing.assert_allclose(n["positions_A"][0], frames[0].positions, atol=1e-6)
    # the diffusion analysis reads it unchanged
    from phonion.diffusion import analyze_trajectory
    from phonion.settings import DiffusionSettings

    ds = DiffusionSettings(mobile_ion="Li", min_duration_ps=1.0)
    out, _ = analyze_trajectory(t, ds)
    ref_out, _ = analyze_trajectory(ref, ds)
    assert out["status"] == "ok" and not out["melted"]
    d = [k for k in out if k.startswith("d_") and k.endswith("_A2_ps")]
    assert d and all(out[k] == pytest.approx(ref_out[k], rel=1e-6) for k in d
                     if out[k] is not None)


def test_truncated_xdatcar_keeps_complete_frames(tmp_path):
    lines = gzip.open(ARGYRODITE, "rt").read().split("\n")
    cut = "\n".join(lines[: 7 + 80 * 417 + 1 + 200]) + "\n" + lines[7 + 80 * 417 + 201][:13]
    (tmp_path / "XDATCAR").write_text(cut)
    x = vasp.read_xdatcar(tmp_path / "XDATCAR")
    assert x.truncated and len(x.frac) == 80 and x.steps[-1] == 80
    # a cut at the end of a whole line inside frame 81 leaves 80; after its last line, 81
    (tmp_path / "XDATCAR").write_text("\n".join(lines[: 7 + 80 * 417 + 1 + 415]) + "\n")
    assert len(vasp.read_xdatcar(tmp_path / "XDATCAR").frac) == 80
    (tmp_path / "XDATCAR").write_text("\n".join(lines[: 7 + 80 * 417 + 1 + 416]) + "\n")
    assert len(vasp.read_xdatcar(tmp_path / "XDATCAR").frac) == 81


def test_aimd_cut_by_wall_time_continues_without_duplicated_or_missing_steps(
        tmp_path, monkeypatch):
    """A 140-step AIMD run (the argyrodite XDATCAR, read as a frame every step) killed inside
    frame 81: the continuation starts from frame 80 with velocities from the frames before
    it and asks for the 61 remaining steps (the first recomputes frame 80); the fake VASP
    checks those inputs and writes the real frames 80…140; the two segments concatenate
    to the original 140 frames, every step once."""
    from phonion.geometry import unwrap

    full = vasp.read_xdatcar(ARGYRODITE)
    s = vasp.VaspSettings(aimd_potim_fs=2.0)
    seg1, seg2 = tmp_path / "seg1", tmp_path / "seg2"
    first = Atoms(full.symbols, cell=full.cells_A[0], scaled_positions=full.frac[0], pbc=True)
    vasp.write_aimd(first, seg1, s, 800.0, 140, potcar_spec=True)
    fake = {"xdatcar_frames": {"source": str(ARGYRODITE), "first": 1, "last": 140,
                               "cut_in_frame": 81}}
    (seg1 / "fake_vasp.json").write_text(json.dumps(fake))
    monkeypatch.chdir(seg1)
    monkeypatch.delenv("FAKE_VASP_SPEC", raising=False)
    import fake_vasp

    assert fake_vasp.main() == 0  # the killed run: no vasprun.xml, XDATCAR cut mid-frame
    assert not vasp.check(seg1)[0]
    record = vasp.continue_aimd(seg1, seg2, s, total_steps=140, potcar_spec=True)
    assert record["first_step"] == 80 and record["restart_frame_index"] == 79
    pos = unwrap(full.frac[77:80], full.cells_A[0])
    v80 = (3 * pos[2] - 4 * pos[1] + pos[0]) / (2 * 2.0)
    spec = {"incar": {**SEED000_AIMD, "POTIM": 2.0, "NSW": 61}, "kpoints": GAMMA,
            "poscar": {"natoms": 416, "frac_positions": full.frac[79].tolist(),
                       "velocities_A_fs": v80.tolist(), "vtol": 1e-6},
            "xdatcar_frames": {"source": str(ARGYRODITE), "first": 80, "last": 140}}
    monkeypatch.chdir(seg2)
    (seg2 / "fake_vasp.json").write_text(json.dumps(spec))
    assert fake_vasp.check_inputs(spec, seg2) == []
    assert fake_vasp.main() == 0
    t = vasp.concatenate_segments([seg1, seg2])
    assert list(t["step"]) == list(range(1, 141))
    whole = vasp.read_trajectory(ARGYRODITE, frame_dt_ps=0.002)
    np.testing.assert_allclose(t["positions_A"], whole["positions_A"], atol=1e-6)
    assert t["frame_dt_ps"] == pytest.approx(0.002)
    assert vasp.continue_aimd(seg2, tmp_path / "seg3", s, total_steps=140) is None
    # the continuation cut too (inside its frame 31, global step 110): a third segment
    # starts from global step 109 and the three concatenate to the same 140 frames
    spec2 = {"xdatcar_frames": {**spec["xdatcar_frames"], "cut_in_frame": 31}}
    (seg2 / "fake_vasp.json").write_text(json.dumps(spec2))
    assert fake_vasp.main() == 0
    seg3 = tmp_path / "seg3"
    record = vasp.continue_aimd(seg2, seg3, s, total_steps=140, potcar_spec=True)
    assert record["first_step"] == 109 and incar_of(seg3)["NSW"] == 32
    spec3 = {"poscar": {"frac_positions": full.frac[108].tolist()},
             "xdatcar_frames": {"source": str(ARGYRODITE), "first": 109, "last": 140}}
    (seg3 / "fake_vasp.json").write_text(json.dumps(spec3))
    monkeypatch.chdir(seg3)
    assert fake_vasp.main() == 0
    t3 = vasp.concatenate_segments([seg1, seg2, seg3])
    assert list(t3["step"]) == list(range(1, 141))
    np.testing.assert_allclose(t3["positions_A"], whole["positions_A"], atol=1e-6)
    # a gap between segments is refused, not papered over
    rec = json.loads((seg2 / vasp.SEGMENT_FILE).read_text())
    (seg2 / vasp.SEGMENT_FILE).write_text(json.dumps({**rec, "first_step": 82}))
    with pytest.raises(Exception, match="gap"):
        vasp.concatenate_segments([seg1, seg2])


def test_aimd_runs_with_the_gamma_command(tmp_path, monkeypatch):
    """Γ-only KPOINTS (every AIMD run) pick dft.vasp.gamma_command; a complete MD vasprun
    (real ionic-step blocks, NSW of them) passes custodian and the check."""
    atoms = bulk("NaCl", "rocksalt", a=5.69, cubic=True)
    vasp.write_aimd(atoms, tmp_path, vasp.VaspSettings(), 800.0, 3, potcar_spec=True)
    src = tmp_path / "src"
    src.mkdir()
    md_vasprun(src, 3, 3)
    spec = {"incar": {**SEED000_AIMD, "NSW": 3}, "kpoints": GAMMA,
            "outputs": {"vasprun.xml": str(src / "vasprun.xml")}}
    (tmp_path / "fake_vasp.json").write_text(json.dumps(spec))
    monkeypatch.setenv("FAKE_VASP_SPEC", str(tmp_path / "fake_vasp.json"))
    s = vasp.VaspSettings(command="no-such-vasp-binary",
                          gamma_command=f"{sys.executable} {FAKE_VASP}")
    vasp.run(tmp_path, s, poll_s=0.05)
    assert vasp.check(tmp_path, s) == (True, "")
    # an AIMD run whose SCF hit NELM in its steps fails on phonion's check, without custodian
    # rerunning the whole trajectory
    text = (src / "vasprun.xml").read_text(encoding="latin-1")
    (src / "vasprun.xml").write_text(text.replace('name="NELM">    60', 'name="NELM">    23'),
                                     encoding="latin-1")
    (tmp_path / "fake_vasp_runs.json").unlink()
    with pytest.raises(DFTRunFailed, match="SCF hit NELM 23 in 3 of 3 MD steps"):
        vasp.run(tmp_path, s, poll_s=0.05)
    assert len(json.loads((tmp_path / "fake_vasp_runs.json").read_text())) == 1


def test_continuation_refuses_sparse_frames(tmp_path):
    atoms = bulk("NaCl", "rocksalt", a=5.69, cubic=True)
    vasp.write_aimd(atoms, tmp_path, vasp.VaspSettings(aimd_nblock=10), 800.0, 100,
                    potcar_spec=True)
    with pytest.raises(ConfigError, match="NBLOCK 10"):
        vasp.continue_aimd(tmp_path, tmp_path / "next", vasp.VaspSettings(), 100)


def test_engine_interface():
    from phonion.dft import DFTEngine

    assert isinstance(get_engine("vasp"), DFTEngine)
    with pytest.raises(ConfigError, match="dft.engine"):
        get_engine("abinit")


def test_relaxed_structure_comes_back_in_input_order(tmp_path, monkeypatch):
    """relax.engine vasp: inputs of a relaxation for atoms given interleaved (Na Cl Na …),
    checked by the fake against seed 000's cutoff and pymatgen's relax set; a converged
    relaxation (3 real ionic steps, NSW 99) gives vasprun.xml's final structure with the
    atoms back in the input order and its free energy."""
    from pymatgen.io.vasp import Vasprun

    atoms, _ = nacl_fd()
    perm = np.ravel(np.column_stack([np.arange(32), np.arange(32, 64)]))
    src = tmp_path / "src"
    src.mkdir()
    md_vasprun(src, 3, 99, ibrion=2)
    engine = get_engine("vasp")
    run = tmp_path / "relax"
    engine.write_relax(atoms[perm], run, vasp.VaspSettings(), potcar_spec=True)
    fake_run(run, {"incar": {"ENCUT": 520.0, "EDIFF": 1e-6, "IBRION": 2, "ISIF": 3,
                             "NSW": 99, "EDIFFG": -0.01},
                   "outputs": {"vasprun.xml": str(src / "vasprun.xml")}},
             monkeypatch=monkeypatch)
    relaxed = engine.read_relaxed(run)
    final = Vasprun(src / "vasprun.xml", parse_potcar_file=False).final_structure
    assert relaxed.get_chemical_symbols() == atoms[perm].get_chemical_symbols()
    np.testing.assert_allclose(relaxed.get_scaled_positions(wrap=False),
                               final.frac_coords[perm], atol=1e-12)
    assert relaxed.info["energy_eV"] == pytest.approx(-216.82820693, abs=1e-8)
    # every ionic step with its forces (fine-tuning data), in the input order: the real
    # vasprun's forces are FORCE_SETS's first displacement
    from phonopy.file_IO import parse_FORCE_SETS

    ref = parse_FORCE_SETS(filename=str(FD / "FORCE_SETS"))["first_atoms"][0]["forces"]
    path = engine.read_relax_path(run)
    assert list(path["steps"]) == [1, 2, 3]
    assert path["symbols"] == atoms[perm].get_chemical_symbols()
    np.testing.assert_allclose(path["positions_A"][-1], relaxed.positions, atol=1e-9)
    for k in range(3):
        np.testing.assert_allclose(path["forces_eV_A"][k], np.asarray(ref)[perm], atol=1e-6)
        np.testing.assert_allclose(path["cells_A"][k], final.lattice.matrix, atol=1e-12)
    np.testing.assert_allclose(path["energies_eV"], -216.82820693, atol=1e-8)
    # a relaxation that used all its steps is failed, not read
    md_vasprun(run, 3, 3, ibrion=2)
    with pytest.raises(DFTRunFailed, match="relaxation not converged"):
        engine.read_relaxed(run)


def test_aimd_frames_carry_the_forces_of_vasprun(tmp_path):
    """An AIMD run folder (XDATCAR every step, NBLOCK 1): vasprun.xml holds the forces of
    every ionic step, which the trajectory keeps as DFT forces (fine-tuning data,
    ``finetune.aimd_frames``); here 3 real ionic steps, whose forces are FORCE_SETS's first
    displacement. A vasprun.xml that stops short of the XDATCAR gives no forces."""
    from ase.io import write
    from phonopy.file_IO import parse_FORCE_SETS
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.io.vasp import Vasprun

    md_vasprun(tmp_path, 3, 3)
    st = Vasprun(tmp_path / "vasprun.xml", parse_potcar_file=False).final_structure
    frame = AseAtomsAdaptor.get_atoms(st)
    write(tmp_path / "XDATCAR", [frame] * 3, format="vasp-xdatcar")
    (tmp_path / "INCAR").write_text("IBRION = 0\nPOTIM = 1.5\nNBLOCK = 1\nTEBEG = 800\n"
                                    "NSW = 3\n")
    traj = vasp.read_trajectory(tmp_path)
    ref = np.asarray(parse_FORCE_SETS(filename=str(FD / "FORCE_SETS"))["first_atoms"][0][
        "forces"])
    assert traj["forces_eV_A"].shape == (3, 64, 3)
    np.testing.assert_allclose(traj["forces_eV_A"], np.broadcast_to(ref, (3, 64, 3)),
                               atol=1e-6)
    np.testing.assert_allclose(traj["potential_energy_eV"], -216.82820693, atol=1e-8)
    md_vasprun(tmp_path, 2, 3)  # vasprun.xml behind the XDATCAR
    assert "forces_eV_A" not in vasp.read_trajectory(tmp_path)
