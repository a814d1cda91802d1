"""Write a tiny NaCl training set labelled by phonion's rigid-ion potential (extxyz).

Used to train a real (small) MACE model locally in seconds for the per-backend
environment test; run with any interpreter that has numpy, ase and phonion on its path.
"""

import sys

import numpy as np
from ase.build import bulk
from ase.io import write

from phonion.potentials import RigidIonPotential

rng = np.random.default_rng(0)
frames = []
for k in range(40):
    a = 5.65 + rng.uniform(-0.25, 0.25)
    atoms = bulk("NaCl", "rocksalt", a=a, cubic=True)
    atoms.rattle(0.08, seed=k)
    atoms.calc = RigidIonPotential()
    atoms.info["REF_energy"] = atoms.get_potential_energy()
    atoms.arrays["REF_forces"] = atoms.get_forces()
    atoms.info["REF_stress"] = atoms.get_stress(voigt=False)
    atoms.calc = None
    frames.append(atoms)
write(sys.argv[1], frames, format="extxyz")
