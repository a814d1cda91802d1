"""Record a real melt for the melt-filter test: rock-salt NaCl (2×2×2 cubic cell, 64 atoms)
with phonion's rigid-ion test potential, Langevin NVT at 3000 K (far above the potential's
melting point), 2 fs steps, a frame every 10 steps, 3 000 steps (6 ps).

    python tests/data/trajectories/make_melt.py   # writes nacl-rigid-ion-3000K.npz here
"""

from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from phonion.potentials import RigidIonPotential

atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)
atoms.calc = RigidIonPotential()
MaxwellBoltzmannDistribution(atoms, temperature_K=3000, rng=np.random.default_rng(0))
dyn = Langevin(atoms, 2 * units.fs, temperature_K=3000, friction=0.02,
               rng=np.random.default_rng(1))
pos, vel = [atoms.get_positions()], [atoms.get_velocities()]
for _ in range(300):
    dyn.run(10)
    pos.append(atoms.get_positions())
    vel.append(atoms.get_velocities())
np.savez_compressed(Path(__file__).with_name("nacl-rigid-ion-3000K.npz"),
                    positions_A=np.array(pos, np.float32),
                    velocities_A_ps=np.array(vel, np.float32) * 1000 * units.fs,
                    numbers=atoms.numbers, cell_A=atoms.cell.array, frame_dt_ps=0.02,
                    temperature_K=3000.0)
