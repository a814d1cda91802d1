"""One step of a batch of NVT runs as tensors (:class:`Batch`), the integrators of
:mod:`phonion.md_batch` (``md.engine: torch_sim``), and :class:`CalculatorModel`, an ASE
calculator as a torch-sim model.

Every thermostat of the ASE engine (``md.thermostat``) runs batched, with its semantics:

- ``langevin``: BAOAB splitting (Leimkuhler & Matthews, Appl. Math. Res. Express 2013, 34:
  half kick, half drift, Ornstein–Uhlenbeck step p ← c₁p + √((1−c₁²) m k_BT) ξ with
  c₁ = exp(−γ Δt), half drift, force, half kick) with ``md.friction_per_fs`` as γ, the
  friction of the ASE engine's Langevin: a different discretisation of the same SDE, so the
  two sample the same canonical ensemble at the same coupling (tests/test_md_batch.py
  compares temperature mean and variance and ⟨u²⟩ with ASE runs). As with the ASE engine's
  FixCom, the centre of mass does not move (net force and the noise's net momentum removed
  per system) and the temperature counts 3N − 3 degrees of freedom. Each run's noise comes
  from its own torch generator (seeded with ``md.seed``, saved in its checkpoint), drawn on
  the model's device.
- ``bussi``: stochastic velocity rescaling (Bussi, Donadio & Parrinello, J. Chem. Phys. 126,
  014101 (2007), Eq. A7, time constant ``md.tau_fs``) before each velocity-Verlet step, 3N
  degrees of freedom: the algorithm of ASE's ``Bussi``, drawing from the same NumPy
  generator stream as the ASE engine (``md.seed``, after the initial state).
- ``nose_hoover_chain``: the Nosé–Hoover chain of ASE's ``NoseHooverChainNVT`` (Martyna,
  Klein & Tuckerman, J. Chem. Phys. 97, 2635 (1992); chain of 3, fourth-order
  Suzuki–Yoshida factorisation, one loop, ``md.tau_fs`` as the damping time) around each
  velocity-Verlet step, with each run's chain variables (η, p_η) in its checkpoint.

Bussi and Nosé–Hoover runs follow the ASE engine's trajectory step for step (same start,
same random stream, same operator splitting; tests/test_md_batch.py), not only its
ensemble. Hand-written rather than torch-sim's integrators because those draw the noise of
all systems from torch's global generator and wrap positions into the cell: here a run's
trajectory does not depend on what it was batched with and resumes exactly, and positions
stay unwrapped for the MSD (the model gets wrapped copies).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.md.nose_hoover_chain import FOURTH_ORDER_COEFFS

from .errors import PhonionError

#: the thermostats the batch integrates (all of the ASE engine's)
BATCH_THERMOSTATS = ("langevin", "bussi", "nose_hoover_chain")
#: Nosé–Hoover chain length, as ASE's NoseHooverChainNVT default the ASE engine uses
NHC_LENGTH = 3


def _torch():
    import torch

    return torch


class CalculatorModel:
    """An ASE calculator as a torch-sim model: every system of the batch evaluated in turn
    (the backends torch-sim does not wrap, and the analytic test potential). Forces and
    energies are the calculator's; float64."""

    def __init__(self, calculator):
        torch = _torch()
        self.calculator = calculator
        self.device, self.dtype = torch.device("cpu"), torch.float64
        self.batched = False

    def __call__(self, state, calculators: list | None = None) -> dict:
        """Forces and energies of every system of ``state``; ``calculators``: one per
        system (None: this model's)."""
        torch = _torch()
        pos = state.positions.detach().cpu().numpy()
        cells = state.cell.detach().cpu().numpy()
        idx = state.system_idx.detach().cpu().numpy()
        z = state.atomic_numbers.detach().cpu().numpy()
        forces, energies = np.zeros_like(pos), []
        for s in range(len(cells)):
            sel = idx == s
            at = Atoms(z[sel], positions=pos[sel], cell=cells[s].T, pbc=True)
            at.calc = (calculators[s] if calculators else None) or self.calculator
            forces[sel] = at.get_forces()
            energies.append(at.get_potential_energy())
        return {"forces": torch.as_tensor(forces, dtype=torch.float64),
                "energy": torch.as_tensor(energies, dtype=torch.float64)}


class Batch:
    """The active runs as tensors: positions x and momenta p (float64, ASE units: Å,
    amu·Å/t with t = Å·√(amu/eV)), masses, cells, the per-atom Δt and each run's
    thermostat constants (and Nosé–Hoover chain variables). One thermostat per batch.
    Built again only when a run leaves."""

    def __init__(self, runs: list, model):
        """``runs``: the live runs (:class:`phonion.md_batch._Run`); ``model``: a torch-sim
        model or :class:`CalculatorModel`."""
        torch = _torch()
        dev, f64 = model.device, torch.float64
        self.model, self.runs, self.f64 = model, runs, f64
        kinds = {r.s.thermostat for r in runs}
        if len(kinds) != 1 or not kinds <= set(BATCH_THERMOSTATS):
            raise PhonionError(f"a batch integrates one of {BATCH_THERMOSTATS}, not "
                               f"{sorted(kinds)}")
        self.thermostat = kinds.pop()
        n_at = [len(r.positions) for r in runs]
        self.bounds = np.cumsum([0, *n_at])
        self.sys_idx = torch.repeat_interleave(torch.arange(len(runs), device=dev),
                                               torch.as_tensor(n_at, device=dev))

        def per_atom(values, per_run=True):
            v = torch.as_tensor(np.concatenate(values) if not per_run else values,
                                dtype=f64, device=dev)
            return (v[self.sys_idx] if per_run else v)[:, None]

        self.x = torch.as_tensor(np.concatenate([r.positions for r in runs]), dtype=f64,
                                 device=dev)
        self.m = per_atom([r.masses for r in runs], per_run=False)
        self.cell = torch.as_tensor(np.stack([r.m.atoms.cell.array.T for r in runs]),
                                    dtype=f64, device=dev)
        self.z = torch.as_tensor(np.concatenate([r.m.atoms.numbers for r in runs]),
                                 device=dev)
        self.dt = per_atom([r.s.timestep_fs * units.fs for r in runs])
        self.m_sys = torch.zeros(len(runs), 1, dtype=f64, device=dev).index_add_(
            0, self.sys_idx, self.m)

        def per_run(values):
            return torch.as_tensor(values, dtype=f64, device=dev)

        dt_run = per_run([r.s.timestep_fs * units.fs for r in runs])
        kT_run = per_run([units.kB * r.s.temperature_K for r in runs])
        if self.thermostat == "langevin":
            kT = kT_run[self.sys_idx][:, None]
            gamma = per_atom([r.s.friction_per_fs / units.fs for r in runs])
            self.c1 = torch.exp(-gamma * self.dt)
            self.c2 = torch.sqrt((1 - self.c1 ** 2) * kT * self.m)
        elif self.thermostat == "bussi":  # ASE Bussi.__init__
            self.exp_term = [float(np.exp(-(r.s.timestep_fs * units.fs)
                                               / (r.s.tau_fs * units.fs))) for r in runs]
            self.target_ke = [0.5 * units.kB * r.s.temperature_K * r.n_dof for r in runs]
        else:  # ASE NoseHooverChainThermostat.__init__
            tau2 = per_run([(r.s.tau_fs * units.fs) ** 2 for r in runs])
            self.n3kT = per_run([3 * len(r.masses) for r in runs]) * kT_run
            self.kT, self.half_dt = kT_run, 0.5 * dt_run
            self.Q = (kT_run * tau2)[:, None].repeat(1, NHC_LENGTH)
            self.Q[:, 0] = self.n3kT * tau2
            self.eta = per_run(np.stack([r.eta for r in runs]))
            self.p_eta = per_run(np.stack([r.p_eta for r in runs]))
        self.mdtype = getattr(model, "dtype", f64)
        # what evaluate() hands the model every step, built once per batch
        self.model_masses = self.m[:, 0].to(self.mdtype)
        self.model_cell = self.cell.to(self.mdtype)
        self.calculators = ([r.m.calculator for r in runs]
                            if isinstance(model, CalculatorModel) else None)
        self.n_at = n_at
        self.p = torch.as_tensor(np.concatenate([r.momenta for r in runs]), dtype=f64,
                                 device=dev)
        self.raw, self.epot = self.evaluate()
        self.f = self.com_free(self.raw) if self.thermostat == "langevin" else self.raw

    def com_free(self, v):
        """``v`` (momenta or forces) minus m_i × (its per-system sum) / (system mass)."""
        torch = _torch()
        tot = torch.zeros(len(self.runs), 3, dtype=self.f64, device=v.device).index_add_(
            0, self.sys_idx, v)
        return v - self.m * (tot / self.m_sys)[self.sys_idx]

    def evaluate(self):
        """The model's forces (eV/Å) and energies (eV) at x: torch-sim's models get wrapped
        copies of x (as torch-sim's own integrators give them), ASE calculators x itself
        (as the ASE engine gives them)."""
        from torch_sim.state import SimState
        from torch_sim.transforms import pbc_wrap_batched

        if self.calculators is not None:
            x = self.x
        else:
            x = pbc_wrap_batched(self.x, self.cell, self.sys_idx)
        st = SimState(positions=x.to(self.mdtype), masses=self.model_masses,
                      cell=self.model_cell, pbc=True, atomic_numbers=self.z,
                      system_idx=self.sys_idx)
        res = (self.model(st, self.calculators) if self.calculators is not None
               else self.model(st))
        return res["forces"].detach().to(self.f64), res["energy"].detach().to(self.f64)

    def step(self) -> None:
        """One step of every run with the batch's thermostat."""
        if self.thermostat == "langevin":
            return self._baoab()
        if self.thermostat == "bussi":  # ASE Bussi.step: rescale, then velocity Verlet
            self.p = self.p * self._bussi_alpha()[self.sys_idx][:, None]
            return self._verlet()
        self._nhc(self.half_dt)  # ASE NoseHooverChainNVT.step
        self._verlet()
        self._nhc(self.half_dt)

    def _verlet(self) -> None:
        self.p = self.p + 0.5 * self.dt * self.f
        self.x = self.x + self.dt * self.p / self.m
        self.raw, self.epot = self.evaluate()
        self.f = self.raw
        self.p = self.p + 0.5 * self.dt * self.f

    def _two_ke(self):
        """2 × kinetic energy of each run (eV), Σ p²/m."""
        torch = _torch()
        return torch.zeros(len(self.runs), dtype=self.f64, device=self.p.device).index_add_(
            0, self.sys_idx, (self.p ** 2 / self.m).sum(1))

    def _bussi_alpha(self):
        """Each run's velocity scale factor, Bussi et al. 2007 Eq. (A7), with the draws of
        ASE's Bussi.calculate_alpha from the run's NumPy generator (a normal R₁, then
        Σᵢ₌₂ᴺᶠ Rᵢ² as 2·Γ((N_f − 1)/2))."""
        torch = _torch()
        ke = (0.5 * self._two_ke()).cpu().numpy()
        alpha = []
        for r, k, c, target in zip(self.runs, ke, self.exp_term, self.target_ke,
                                   strict=True):
            scale = (1 - c) * target / k / r.n_dof
            r1 = r.rng.standard_normal()
            rest = 2.0 * r.rng.standard_gamma(0.5 * (r.n_dof - 1))
            alpha.append(np.sqrt(c + scale * (rest + r1 ** 2)
                                 + 2 * r1 * np.sqrt(c * scale)))
        return torch.as_tensor(alpha, dtype=self.f64, device=self.p.device)

    def _nhc(self, delta) -> None:
        """exp(iL_NHC δ) for every run (δ per run): ASE's
        NoseHooverChainThermostat.integrate_nhc with one loop, vectorised over runs."""
        torch = _torch()
        for coeff in FOURTH_ORDER_COEFFS:
            d = coeff * delta
            for j in reversed(range(NHC_LENGTH)):
                self._nhc_p_eta(j, d / 2, d / 4)
            self.eta = self.eta + d[:, None] * self.p_eta / self.Q
            scale = torch.exp(-d * self.p_eta[:, 0] / self.Q[:, 0])
            self.p = self.p * scale[self.sys_idx][:, None]
            for j in range(NHC_LENGTH):
                self._nhc_p_eta(j, d / 2, d / 4)

    def _nhc_p_eta(self, j: int, d2, d4) -> None:
        torch = _torch()
        last = j == NHC_LENGTH - 1
        if not last:
            self.p_eta[:, j] *= torch.exp(-d4 * self.p_eta[:, j + 1] / self.Q[:, j + 1])
        g = (self._two_ke() - self.n3kT if j == 0
             else self.p_eta[:, j - 1] ** 2 / self.Q[:, j - 1] - self.kT)
        self.p_eta[:, j] += d2 * g
        if not last:
            self.p_eta[:, j] *= torch.exp(-d4 * self.p_eta[:, j + 1] / self.Q[:, j + 1])

    def _baoab(self) -> None:
        """One BAOAB step of every run (each run's noise from its own generator)."""
        torch = _torch()
        self.p = self.p + 0.5 * self.dt * self.f
        self.x = self.x + 0.5 * self.dt * self.p / self.m
        noise = torch.cat([torch.randn(k, 3, generator=r.gen, dtype=self.f64,
                                       device=self.x.device)
                           for k, r in zip(self.n_at, self.runs, strict=True)])
        self.p = self.c1 * self.p + self.com_free(self.c2 * noise)
        self.x = self.x + 0.5 * self.dt * self.p / self.m
        self.raw, self.epot = self.evaluate()
        self.f = self.com_free(self.raw)
        self.p = self.p + 0.5 * self.dt * self.f

    def pull(self, runs) -> tuple:
        """Positions and momenta of ``runs`` (indices into this batch) back into them;
        returns the forces, model forces and energies of every run (NumPy)."""
        xs, ps = self.x.cpu().numpy(), self.p.cpu().numpy()
        chain = ((self.eta.cpu().numpy(), self.p_eta.cpu().numpy())
                 if self.thermostat == "nose_hoover_chain" else None)
        for i in runs:
            sl = slice(self.bounds[i], self.bounds[i + 1])
            self.runs[i].positions, self.runs[i].momenta = xs[sl].copy(), ps[sl].copy()
            if chain:
                self.runs[i].eta, self.runs[i].p_eta = chain[0][i].copy(), chain[1][i].copy()
        return self.f.cpu().numpy(), self.raw.cpu().numpy(), self.epot.cpu().numpy()
