"""Which model calls known-stable compounds unstable? False-instability rate, mobile-ion
MSD and cost of the offline MLPs on real, experimentally known room-temperature phases
(issue 16, item 4).

    python bench/models.py run sevenn:7net-0 sevenn:7net-l3i5 [--until HH:MM] \
        [--resume FILE] >> bench/models.jsonl
    python bench/models.py run sevenn:7net-mf-0:PBE chgnet:0.3.0 ... >> bench/models.jsonl
    python bench/models.py summary bench/models.jsonl

A model is ``backend:name[:modal]``. Every structure of the optimizer benchmark (demo set,
then tests/data/structures by size) goes, for every model given, through phonion's intake
(primitive cell), phonion.relax.relax (optimizer OPTIMIZER, otherwise the default
settings), phonion's supercell choice with at least MIN_ATOMS atoms
(``choose_supercell``), phonopy finite displacements (0.01 Å, phonopy's symmetry-reduced
set) and phonopy force constants, then phonion's stability screen (``assess_stability``:
Γ-centred 30 Å q-mesh + seekpath band path, unstable when a mode is below −0.1 THz apart
from the Γ acoustic modes) and the mobile-ion MSD at 300 K on a MSD_MESH_A q-mesh
(⟨u²⟩ summed over x, y, z and averaged over the mobile-ion sites; imaginary modes
contribute nothing, so the MSD of an unstable cell is a lower bound). One JSON line per
(structure, model), written as soon as it is known.

Every structure is run with every model before the next structure, so a run stopped by
``--until`` (UTC) leaves paired verdicts. The phonons are computed on the relaxed cell
even when the relaxation did not converge or lost symmetry (``relax_status`` says so).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from optimizers import Counting, _ion, structures  # noqa: E402

from phonion.displace import choose_supercell  # noqa: E402
from phonion.harmonic import mesh_numbers, phonopy_for, to_ase  # noqa: E402
from phonion.intake import read_structure, triage  # noqa: E402
from phonion.phonon_descriptors import mesh_msd  # noqa: E402
from phonion.relax import relax, verdict  # noqa: E402
from phonion.settings import (  # noqa: E402
    DisplaceSettings,
    IntakeSettings,
    RelaxSettings,
    StabilitySettings,
)
from phonion.stability import assess_stability  # noqa: E402

OPTIMIZER = "LBFGS"
MIN_ATOMS = 60
DISTANCE_A = 0.01
MSD_MESH_A = 40.0
TEMPERATURE_K = 300.0
WALL_GUARD_S = 900.0
#: not the ordered room-temperature phase: high-temperature cubic phases (tetragonal at room
#: temperature) and the low-temperature R3c phase of NaNbO3
NOT_RT_PHASE = {"Na3PS4-cubic", "Na3SbS4-cubic", "NaNbO3-R3c"}


def _load(spec: str):
    from phonion.calculators import get_calculator

    backend, name, *modal = spec.split(":")
    return get_calculator(backend, name, modal=modal[0] if modal else "")


def one(prim, ion: str, calc, counter: Counting) -> dict:
    """Relax, phonons and verdict of one structure with one model."""
    row: dict = {}
    s = RelaxSettings(optimizer=OPTIMIZER)
    counter.calls = 0
    r = relax(prim, calc, s, logfile=None)
    status, reason = verdict(r, s)
    row.update(relax_status=status, relax_reason=reason, relax_converged=r.converged,
               relax_force_calls=counter.calls, relax_steps=r.n_steps,
               spacegroups=[r.spacegroup_initial[0], r.spacegroup_final[0]],
               volume_change_percent=round(100 * (r.volume_final_A3 / r.volume_initial_A3 - 1),
                                           2))
    relaxed = r.atoms
    choice = choose_supercell(relaxed, DisplaceSettings(min_atoms=MIN_ATOMS))
    ph = phonopy_for(relaxed, choice)
    ph.generate_displacements(distance=DISTANCE_A)
    counter.calls = 0
    forces = []
    for sc in ph.supercells_with_displacements:
        atoms = to_ase(sc)
        atoms.calc = calc
        forces.append(atoms.get_forces().copy())
    forces = np.array(forces)
    forces -= forces.mean(axis=1, keepdims=True)  # drift
    ph.forces = forces
    ph.produce_force_constants()
    ph.symmetrize_force_constants()
    row.update(supercell_atoms=len(ph.supercell), displacements=len(forces),
               phonon_force_calls=counter.calls)
    out, _ = assess_stability(ph, StabilitySettings())
    row.update(stable=out["stable"], min_frequency_THz=round(out["lowest_frequency_THz"], 3),
               n_imaginary_modes=out["n_imaginary_modes"],
               mesh_min_THz=round(out["mesh_lowest_frequency_THz"], 3),
               path_min_THz=round(out["band_path_lowest_frequency_THz"], 3),
               lowest_q=out["mesh_lowest_qpoint"] if out["mesh_lowest_frequency_THz"]
               <= out["band_path_lowest_frequency_THz"] else out["band_path_lowest_qpoint"])
    mobile = np.array([sym == ion for sym in ph.primitive.symbols])
    mesh = mesh_numbers(ph, MSD_MESH_A)
    msd = mesh_msd(ph, mesh, [TEMPERATURE_K])[0]  # (N, 3), Å²
    row.update(msd_mobile_A2=round(float(msd[mobile].sum(axis=1).mean()), 5), msd_mesh=mesh)
    return row


def main(specs: list[str], until: str | None, resume: str | None) -> None:
    models = {}
    for spec in specs:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # CHGNet prints its banner to stdout
            loaded = _load(spec)
        models[spec] = (loaded, Counting(loaded.calculator, WALL_GUARD_S),
                        round(time.perf_counter() - t0, 1))
    done = set()
    if resume and Path(resume).exists():
        done = {(r["structure"], r["model"]) for r in
                (json.loads(x) for x in Path(resume).read_text().splitlines()
                 if x.startswith("{"))}
    for path in structures():
        if until and time.strftime("%H:%M", time.gmtime()) >= until:
            break
        ion = _ion(path)
        try:
            prim = triage(read_structure(path), IntakeSettings(mobile_ion=ion))
        except Exception as exc:  # noqa: BLE001
            print(json.dumps({"structure": path.stem, "error": str(exc)}), flush=True)
            continue
        for spec, (loaded, counter, load_s) in models.items():
            if (path.stem, spec) in done:
                continue
            t0 = counter.t0 = time.perf_counter()
            try:
                row = one(prim, ion, loaded.calculator, counter)
            except Exception as exc:  # noqa: BLE001 - a crash (or WallGuard) is a result
                row = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps({"structure": path.stem, "atoms": len(prim), "mobile_ion": ion,
                              "model": spec, "optimizer": OPTIMIZER, "model_load_s": load_s,
                              "wall_s": round(time.perf_counter() - t0, 1), **row}),
                  flush=True)


def summary(jsonl: str) -> None:
    rows = [json.loads(x) for x in Path(jsonl).read_text().splitlines() if x.startswith("{")]
    rows = [r for r in rows if "model" in r]
    specs = list(dict.fromkeys(r["model"] for r in rows))
    common = set.intersection(*({r["structure"] for r in rows if r["model"] == m
                                 and "stable" in r} for m in specs)) if specs else set()
    print(f"structures with a verdict from every model: {len(common)}\n")
    print("| model | verdicts | stable (all) | stable (common set) | false-instability rate "
          "(common) | false-instability rate (common, room-temperature phases) | "
          "relax not ok | errors | median force calls (relax + phonons) | median wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in specs:
        rs = [r for r in rows if r["model"] == m]
        v = [r for r in rs if "stable" in r]
        c = [r for r in v if r["structure"] in common]
        calls = sorted(r["relax_force_calls"] + r["phonon_force_calls"] for r in v)
        walls = sorted(r["wall_s"] for r in v)
        st_c = sum(r["stable"] for r in c)
        rt = [r for r in c if r["structure"] not in NOT_RT_PHASE]
        st_rt = sum(r["stable"] for r in rt)
        print(f"| {m} | {len(v)} | {sum(r['stable'] for r in v)}/{len(v)} | "
              f"{st_c}/{len(c)} | {1 - st_c / max(len(c), 1):.0%} | "
              f"{1 - st_rt / max(len(rt), 1):.0%} ({len(rt) - st_rt}/{len(rt)}) | "
              f"{sum(r['relax_status'] != 'ok' for r in v)} | {len(rs) - len(v)} | "
              f"{calls[len(calls) // 2] if calls else '-'} | "
              f"{walls[len(walls) // 2] if walls else '-'} |")
    if specs:
        ref = specs[0]
        print(f"\ncost and agreement against {ref} on the structures both have:\n")
        print("| model | n | wall ratio (median) | verdict differs | stable only here | "
              f"stable only with {ref} | MSD ratio (median, both stable) |")
        print("|---|---|---|---|---|---|---|")
        by_m = {m: {r["structure"]: r for r in rows if r["model"] == m and "stable" in r}
                for m in specs}
        for m in specs[1:]:
            both = sorted(set(by_m[m]) & set(by_m[ref]))
            a, b = by_m[m], by_m[ref]
            wall = [a[x]["wall_s"] / b[x]["wall_s"] for x in both]
            msd = [a[x]["msd_mobile_A2"] / b[x]["msd_mobile_A2"] for x in both
                   if a[x]["stable"] and b[x]["stable"]]
            print(f"| {m} | {len(both)} | {np.median(wall) if wall else float('nan'):.1f} | "
                  f"{sum(a[x]['stable'] != b[x]['stable'] for x in both)} | "
                  f"{', '.join(x for x in both if a[x]['stable'] and not b[x]['stable'])} | "
                  f"{', '.join(x for x in both if b[x]['stable'] and not a[x]['stable'])} | "
                  f"{np.median(msd) if msd else float('nan'):.2f} (n={len(msd)}) |")
    print("\nper structure (min frequency THz / MSD Å² at 300 K; * = unstable):\n")
    print("| structure | ion | " + " | ".join(specs) + " | MSD spread (stable in all) |")
    print("|---|---|" + "---|" * len(specs) + "---|")
    spreads = []
    for st in dict.fromkeys(r["structure"] for r in rows):
        by = {r["model"]: r for r in rows if r["structure"] == st}
        cells, msds = [], []
        for m in specs:
            r = by.get(m)
            if r is None or "stable" not in r:
                cells.append("-" if r is None else "error")
                continue
            cells.append(f"{'' if r['stable'] else '*'}{r['min_frequency_THz']:.2f} / "
                         f"{r['msd_mobile_A2']:.4f}")
            msds.append(r["msd_mobile_A2"] if r["stable"] else None)
        spread = ("-" if len(msds) < 2 or None in msds or len(msds) < len(specs)
                  else f"{(max(msds) - min(msds)) / np.mean(msds):.0%}")
        if spread != "-":
            spreads.append((max(msds) - min(msds)) / np.mean(msds))
        ion = next(iter(by.values())).get("mobile_ion", "")
        print(f"| {st} | {ion} | " + " | ".join(cells) + f" | {spread} |")
    if spreads:
        print(f"\nMSD spread (max − min)/mean between the models, structures stable in all: "
              f"median {np.median(spreads):.0%}, max {max(spreads):.0%} (n={len(spreads)})")


if __name__ == "__main__":
    if sys.argv[1] == "summary":
        summary(sys.argv[2])
    else:
        args = sys.argv[2:]
        opts = {a: args[i + 1] for i, a in enumerate(args) if a.startswith("--")}
        specs = [a for i, a in enumerate(args)
                 if not a.startswith("--") and (i == 0 or not args[i - 1].startswith("--"))]
        main(specs, opts.get("--until"), opts.get("--resume"))
