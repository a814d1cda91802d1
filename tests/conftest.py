"""Shared fixtures: repository paths, small structures, and a Snakemake runner."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo" / "structures"


def _shared_data() -> Path:
    """The project's real DFT data (``shared/data`` beside the checkout). A fresh clone made
    elsewhere (CI clones into a temporary folder) finds it beside the repository it was
    cloned from; ``PHONION_SHARED_DATA`` overrides both."""
    if os.environ.get("PHONION_SHARED_DATA"):
        return Path(os.environ["PHONION_SHARED_DATA"])
    candidates = [ROOT.parent / "shared" / "data"]
    origin = subprocess.run(["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
                            capture_output=True, text=True).stdout.strip()
    if origin and "://" not in origin and not origin.startswith("git@"):
        candidates.append(Path(origin).resolve().parent / "shared" / "data")
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED_DATA = _shared_data()

# Built MLP networks are kept between processes (phonion.calculators.model_cache_dir); the
# tests and the workflows they start keep theirs in a folder of their own, not in ~/.cache
os.environ.setdefault("PHONION_MODEL_CACHE", tempfile.mkdtemp(prefix="phonion-models-"))

PARTIAL_CIF = """data_NaKCl
_symmetry_space_group_name_H-M 'F m -3 m'
_symmetry_Int_Tables_number 225
_cell_length_a 5.9
_cell_length_b 5.9
_cell_length_c 5.9
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Na1 Na 0 0 0 0.5
K1 K 0 0 0 0.5
Cl1 Cl 0.5 0.5 0.5 1
"""

BROKEN_CIF = """data_broken
_cell_length_a 5.6
loop_
_atom_site_label
_atom_site_fract_x
Na1 0.0 0.0
"""

KCL_POSCAR = """KCl rock salt (no sodium)
1.0
0.0 3.1465 3.1465
3.1465 0.0 3.1465
3.1465 3.1465 0.0
K Cl
1 1
Direct
0 0 0
0.5 0.5 0.5
"""


def rigid_ion_phonopy(atoms, dim, calc=None, primitive_matrix=None):
    """Phonopy object with finite-displacement (0.01 Å) force constants of the rigid-ion
    potential (``calc``, default settings if None) on a dim × dim × dim supercell."""
    import numpy as np
    import phonopy
    from ase import Atoms

    from phonion.harmonic import to_phonopy
    from phonion.potentials import RigidIonPotential

    ph = phonopy.Phonopy(to_phonopy(atoms), supercell_matrix=np.eye(3) * dim,
                         primitive_matrix=primitive_matrix, log_level=0)
    ph.generate_displacements(distance=0.01)
    forces = []
    for sc in ph.supercells_with_displacements:
        a = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        a.calc = calc or RigidIonPotential()
        forces.append(a.get_forces())
    ph.forces = forces
    ph.produce_force_constants()
    return ph


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@functools.cache
def _no_scontrol() -> str:
    """A folder whose ``scontrol`` fails at once. snakemake-executor-plugin-slurm runs
    ``scontrol show config`` whenever Snakemake starts (for a help text); on a machine with
    SLURM installed but no controller answering, that waits 9 s per start. Runs that do not
    use the SLURM profile put this folder first on PATH."""
    folder = Path(tempfile.mkdtemp(prefix="phonion-no-scontrol-"))
    stub = folder / "scontrol"
    stub.write_text("#!/bin/sh\nexit 1\n")
    stub.chmod(0o755)
    return str(folder)


def snakemake(workdir: Path, *args: str, config: dict | None = None,
              check: bool = True, timeout: int = 900, extra: list[str] | None = None,
              python: str = sys.executable,
              snakefile: Path = ROOT / "Snakefile") -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with ``workdir/config.yaml`` (through
    the interpreter ``python``)."""
    if config is not None:
        write_config(workdir, config)
    cmd = [python, "-m", "snakemake", "--snakefile", str(snakefile),
           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args,
           *(extra or [])]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not any("profiles/slurm" in str(a) for a in args):
        env["PATH"] = f"{_no_scontrol()}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-5000:]}")
    return proc


def read_status(workdir: Path) -> dict[str, dict[str, str]]:
    lines = (workdir / "results" / "campaign" / "status.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:]]
    return {r["id"]: r for r in rows}


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    """A workdir with a structures/ folder holding NaCl and Na2O from the demo set."""
    folder = tmp_path / "structures"
    folder.mkdir()
    for name in ("NaCl", "Na2O"):
        (folder / f"{name}.cif").write_text((DEMO / f"{name}.cif").read_text())
    return tmp_path


#: Analytic potential and a short MD (0.2 ps) for workflow tests.
#: Debian's CP2K (.ci/run installs cp2k and cp2k-data as root), and the mark of the tests
#: that run it through the workflow
CP2K = shutil.which("cp2k.psmp") or shutil.which("cp2k")
needs_cp2k = [pytest.mark.slow, pytest.mark.skipif(
    CP2K is None, reason="no CP2K binary on PATH: install Debian's cp2k and cp2k-data")]


RIGID = {
    "calculator": {"backend": "rigid_ion", "model": ""},
    "md": {"equilibration_steps": 20, "production_steps": 100, "interval": 4,
           "timestep_fs": 2.0},
}


class SpringNetwork:
    """Test force field for any lattice and any elements: harmonic springs between all pairs
    of a reference structure closer than ``cutoff_A``, E = ½ Σ k (|r| − r0)², r0 the
    reference distance, so the reference is a minimum with known, short-ranged force
    constants (k in eV/Å²; pairs with the mobile ion are softer by ``mobile_factor``).
    An ASE calculator for displaced copies of the reference (same cell, same atom order)."""

    def __init__(self, reference, cutoff_A=4.0, k=2.0, mobile="Na", mobile_factor=0.3):
        from ase.calculators.calculator import Calculator, all_changes
        from ase.neighborlist import neighbor_list

        i, j, shift = neighbor_list("ijS", reference, cutoff_A)
        keep = i < j  # each pair once
        self.i, self.j, self.shift = i[keep], j[keep], shift[keep] @ reference.cell.array
        d = reference.positions[self.j] + self.shift - reference.positions[self.i]
        self.r0 = np.linalg.norm(d, axis=1)
        symbols = np.array(reference.get_chemical_symbols())
        soft = (symbols[self.i] == mobile) | (symbols[self.j] == mobile)
        self.k = np.where(soft, k * mobile_factor, k)
        net = self

        class _Calc(Calculator):
            implemented_properties = ["energy", "forces"]

            def calculate(self, atoms=None, properties=("energy",),
                          system_changes=all_changes):
                super().calculate(atoms, properties, system_changes)
                pos = self.atoms.positions
                d = pos[net.j] + net.shift - pos[net.i]
                r = np.linalg.norm(d, axis=1)
                stretch = r - net.r0
                f = (net.k * stretch / r)[:, None] * d  # force on i, minus that on j
                forces = np.zeros_like(pos)
                np.add.at(forces, net.i, f)
                np.add.at(forces, net.j, -f)
                self.results = {"energy": float(0.5 * np.sum(net.k * stretch**2)),
                                "forces": forces}

        self.calculator = _Calc()


def forces_of(calc, supercell, displacements):
    """Forces (eV/Å) of ``calc`` on ``supercell`` displaced by each of ``displacements``."""
    atoms = supercell.copy()
    atoms.calc = calc
    out = []
    for d in displacements:
        atoms.positions = supercell.positions + d
        out.append(atoms.get_forces().copy())
    return np.array(out)


STRUCTURES = ROOT / "tests" / "data" / "structures"
