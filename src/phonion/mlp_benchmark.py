"""One more MLP against a validated material's DFT forces (config
``dft.benchmark_models``): its forces on the same snapshots, then the comparison of
:func:`phonion.dft_validation.compare` (seed 000 §2.2) and its cost per force call."""

from __future__ import annotations

import time
from collections.abc import Callable

from ase.calculators.calculator import Calculator

from .formats import ForceSet
from .settings import DftValidationSettings


def benchmark(displace_result: dict, dft: ForceSet, calculator: Calculator, name: str,
              s: DftValidationSettings, log: Callable[[str], None] = print) -> dict:
    """The benchmark result of the model ``name`` (``calculator``): force, fc2, band and
    MSD errors against the DFT force set ``dft`` and seconds per force call (wall)."""
    from .dft_validation import compare
    from .forces import compute_forces

    t0 = time.perf_counter()
    mlp = compute_forces(dft.supercell, dft.displacements_A, calculator, log=None)
    per_call = (time.perf_counter() - t0) / (len(dft.displacements_A) + 1)
    out, _ = compare(displace_result, mlp, dft, s)
    hot = out["by_temperature_K"]
    t = max(hot, key=float) if hot else None
    log(f"{name}: force RMSE {out['force_rmse_meV_A']:.1f} meV/Å, stability "
        f"{'agrees' if out['stability_agrees'] else 'DISAGREES'}"
        + (f", MSD ratio {hot[t]['msd_ratio_mlp_dft']:.3f} at {t} K" if t else "")
        + f", {per_call:.2f} s per force call")
    return {"mlp": name, "seconds_per_force_call": per_call, **out}
