"""Batched MD (md.engine torch_sim, issue 28): the same physics as the ASE engine, a run
independent of what it is batched with, kill-and-resume of a batch, a diverging run that
stops alone, SevenNet batched by torch-sim equal to its ASE calculator, and the workflow.

The physics check runs the real low-symmetry structures natrite Na2CO3 (C2/m, COD 9011304)
and zabuyelite Li2CO3 (C2/c) under harmonic spring networks (conftest.SpringNetwork: cheap,
and harmonic, so ⟨u²⟩ ∝ T is a second, engine-free check)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from ase.io import read

from phonion.formats import read_trajectory
from phonion.md import Diverged, run_md
from phonion.settings import MDSettings

from conftest import DEMO, RIGID, ROOT, STRUCTURES, SpringNetwork, snakemake

pytest.importorskip("torch_sim")

from phonion.md_batch import CalculatorModel, Member, run_batch  # noqa: E402

MATERIALS = {"natrite": ("Na2CO3-natrite", "Na"), "zabuyelite": ("Li2CO3-zabuyelite", "Li")}


def _members(tmp_path, production=3000, temps=(300.0, 900.0), **kw):
    out = []
    for key, (name, ion) in MATERIALS.items():
        atoms = read(STRUCTURES / f"{name}.cif")
        calc = SpringNetwork(atoms, cutoff_A=3.5, mobile=ion).calculator
        for T in temps:
            s = MDSettings(**{"temperature_K": T, "equilibration_steps": 200,
                              "production_steps": production, "interval": 4,
                              "timestep_fs": 1.0, "seed": 3, "friction_per_fs": 0.02,
                              "initial_state": "maxwell_boltzmann", **kw})
            out.append(Member(f"{key}@{T:g}K", atoms, s, tmp_path / f"{key}_{T:g}.h5",
                              calculator=calc))
    return out


def _blocks(x, n=10):
    """Mean and its standard error from ``n`` blocks (frames are correlated)."""
    means = np.array([b.mean() for b in np.array_split(np.asarray(x), n)])
    return float(np.mean(x)), float(means.std(ddof=1) / np.sqrt(n))


def test_a_batch_samples_what_the_ase_engine_samples(tmp_path):
    """Two materials × two temperatures as one batch against four ASE Langevin runs of
    the same settings: temperature mean and variance (canonical: 2T²/(3N−3)) and the
    atoms' ⟨u²⟩ agree within their errors, and ⟨u²⟩(900 K)/⟨u²⟩(300 K) = 3 (harmonic)."""
    members = _members(tmp_path)
    res = run_batch(members, CalculatorModel(None), log=None)
    assert all(r["n_frames"] == 750 and r["engine"] == "torch_sim" for r in res.values())
    u2 = {}
    for m in members:
        ase_path = tmp_path / f"ase_{m.path.name}"
        run_md(m.atoms, m.calculator, m.settings, ase_path, log=None)
        stats = {}
        for engine, path in (("batch", m.path), ("ase", ase_path)):
            tr = read_trajectory(path)
            T = tr["temperature_K"]
            pos = tr["positions_A"]
            stats[engine] = (_blocks(T), _blocks((T - T.mean()) ** 2),
                             _blocks(((pos - pos.mean(0)) ** 2).sum(-1).mean(-1)))
        target = m.settings.temperature_K
        canonical = 2 * target ** 2 / (3 * len(m.atoms) - 3)
        for k, what in enumerate(("T", "var T", "u2")):
            (a, ea), (b, eb) = stats["batch"][k], stats["ase"][k]
            assert abs(a - b) < 4 * np.hypot(ea, eb), (m.key, what, a, ea, b, eb)
        assert stats["batch"][0][0] == pytest.approx(target, rel=0.08)
        assert stats["batch"][1][0] == pytest.approx(canonical, rel=0.3)
        u2[m.key] = stats["batch"][2]
    for key in MATERIALS:
        (hot, e_hot), (cold, e_cold) = u2[f"{key}@900K"], u2[f"{key}@300K"]
        ratio = hot / cold
        assert ratio == pytest.approx(3.0, abs=4 * ratio * np.hypot(e_hot / hot,
                                                                   e_cold / cold))


@pytest.mark.parametrize("thermostat", ["bussi", "nose_hoover_chain"])
def test_bussi_and_nose_hoover_follow_the_ase_engine_step_for_step(tmp_path, thermostat):
    """Bussi and the Nosé–Hoover chain batched are ASE's algorithms (same start, same random
    stream, same splitting): two materials × two temperatures as one batch give the ASE
    engine's trajectories frame for frame, to round-off, and the target temperature."""
    members = _members(tmp_path, production=200, thermostat=thermostat, tau_fs=20.0)
    res = run_batch(members, CalculatorModel(None), log=None)
    for m in members:
        assert res[m.key]["n_frames"] == 50, m.key
        ase_path = tmp_path / f"ase_{m.path.name}"
        run_md(m.atoms, m.calculator, m.settings, ase_path, log=None)
        a, b = read_trajectory(m.path), read_trajectory(ase_path)
        assert np.array_equal(a["step"], b["step"])
        np.testing.assert_allclose(a["positions_A"], b["positions_A"], rtol=0, atol=1e-7)
        np.testing.assert_allclose(a["velocities_A_ps"], b["velocities_A_ps"], rtol=0,
                                   atol=1e-6)
        np.testing.assert_allclose(a["temperature_K"], b["temperature_K"], rtol=1e-9)
        T = m.settings.temperature_K
        assert a["temperature_K"].mean() == pytest.approx(T, rel=0.2), m.key


@pytest.mark.parametrize("thermostat", ["langevin", "bussi", "nose_hoover_chain"])
def test_a_longer_run_extends_with_the_thermostat_state(tmp_path, thermostat):
    """A batch run to 40 production steps, then asked for 80, resumes from its checkpoint
    (random generators, Nosé–Hoover chain variables) into the trajectory of a straight
    80-step run, bit for bit."""
    straight = _members(tmp_path / "a", production=80, temps=(600.0,),
                        thermostat=thermostat, tau_fs=20.0)
    (tmp_path / "a").mkdir()
    run_batch(straight, CalculatorModel(None), log=None)
    (tmp_path / "b").mkdir()
    short = _members(tmp_path / "b", production=40, temps=(600.0,), thermostat=thermostat,
                     tau_fs=20.0)
    run_batch(short, CalculatorModel(None), log=None)
    longer = _members(tmp_path / "b", production=80, temps=(600.0,), thermostat=thermostat,
                      tau_fs=20.0)
    res = run_batch(longer, CalculatorModel(None), log=None)
    assert all(r["resumed_from_step"] == 240 for r in res.values())
    for a, b in zip(straight, longer, strict=True):
        ta, tb = read_trajectory(a.path), read_trajectory(b.path)
        for key in ("positions_A", "velocities_A_ps", "potential_energy_eV", "step"):
            assert np.array_equal(ta[key], tb[key]), (a.key, key)


def test_a_run_does_not_depend_on_its_batch(tmp_path):
    """Each run draws its noise from its own generator: natrite at 300 K alone and in a
    batch of four is the same trajectory, bit for bit."""
    batch = _members(tmp_path, production=200)
    run_batch(batch, CalculatorModel(None), log=None)
    alone = _members(tmp_path / "alone", production=200)[:1]
    (tmp_path / "alone").mkdir()
    run_batch(alone, CalculatorModel(None), log=None)
    a, b = read_trajectory(batch[0].path), read_trajectory(alone[0].path)
    for key in ("positions_A", "velocities_A_ps", "potential_energy_eV", "step"):
        assert np.array_equal(a[key], b[key]), key


RUNNER = """
import os, signal, sys
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_md_batch import _members
from phonion.md_batch import CalculatorModel, run_batch

class Killed(CalculatorModel):  # SIGKILLs its own process at batch force call K (0: never)
    calls = 0
    def __call__(self, state, calculators=None):
        Killed.calls += 1
        if Killed.calls == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(state, calculators)

members = _members(Path(sys.argv[1]), production=200)
members[0].settings = replace(members[0].settings, production_steps=120)  # leaves first
res = run_batch(members, Killed(None), log=None)
print({k: v["n_frames"] for k, v in res.items()})
"""


def _run_batch_process(folder, kill_at=0):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-c", RUNNER, str(folder), str(kill_at),
                           str(ROOT / "tests")], env=env, capture_output=True, text=True,
                          timeout=600)


def test_a_killed_batch_resumes_every_run_to_its_steps(tmp_path):
    """SIGKILL in the middle of a batch (one run already finished and gone, the others
    mid-production): the rerun resumes each run from its own checkpoint to exactly its
    requested steps, the same trajectories as an uninterrupted batch, bit for bit."""
    full, broken = tmp_path / "full", tmp_path / "broken"
    full.mkdir()
    broken.mkdir()
    assert _run_batch_process(full).returncode == 0
    proc = _run_batch_process(broken, kill_at=330)
    assert proc.returncode == -signal.SIGKILL
    cut = read_trajectory(broken / "natrite_300.h5")
    assert len(cut["step"]) == 30  # the short run had finished: 120 / 4 frames
    cut = read_trajectory(broken / "zabuyelite_900.h5")
    assert 0 < len(cut["step"]) < 50  # the others were cut short
    proc = _run_batch_process(broken)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("natrite_300", "natrite_900", "zabuyelite_300", "zabuyelite_900"):
        ref, got = (read_trajectory(d / f"{name}.h5") for d in (full, broken))
        prod = 120 if name == "natrite_300" else 200
        assert np.array_equal(got["step"], np.arange(204, 200 + prod + 1, 4)), name
        for key in ("positions_A", "velocities_A_ps", "potential_energy_eV"):
            assert np.array_equal(got[key], ref[key]), (name, key)


def test_a_diverging_run_stops_alone(tmp_path):
    """Two atoms of one run 0.3 Å apart: that run stops with the reason at its first
    commit, the other runs of the batch finish."""
    members = _members(tmp_path, production=100)
    bad = members[1].atoms.copy()
    bad.positions[1] = bad.positions[0] + [0.3, 0.0, 0.0]
    members[1].atoms = bad
    res = run_batch(members, CalculatorModel(None), log=None)
    assert isinstance(res[members[1].key], Diverged)
    assert "apart" in str(res[members[1].key]) or "force" in str(res[members[1].key])
    for m in (members[0], *members[2:]):
        assert res[m.key]["n_frames"] == 25, m.key


def test_a_pool_record_hands_each_run_to_its_material(tmp_path):
    """phonion.md_pool: what a material's md_batch job takes from its pool. A finished run
    is adopted with the pool's summary, a diverged one with its reason; a run of other
    settings (stale record) or whose checkpoint is gone is run again; a finished
    trajectory is passed on to a rerun pool as a hard link, without a write."""

    from phonion import formats
    from phonion.md_pool import adopt, adoptable, entry, partial_of, pass_on_finished, pending

    members = _members(tmp_path, production=40, temps=(300.0,))
    finals = [tmp_path / m.key.split("@")[0] / "300K" / "trajectory.h5" for m in members]
    for m, final in zip(members, finals, strict=True):
        final.parent.mkdir(parents=True)
        m.path = partial_of(final)
    bad = members[1].atoms.copy()
    bad.positions[1] = bad.positions[0] + [0.3, 0.0, 0.0]
    members[1].atoms = bad
    out = run_batch(members, CalculatorModel(None), log=None)
    runs = {f"{i}": entry(m.settings, m.atoms, out[m.key], None)
            for i, m in enumerate(members)}
    record = {"pool": "0000", "runs_in_batch": 2, "runs": {"300K": runs["0"]}}
    took = adopt(record, "300K", members[0].settings, members[0].atoms, finals[0])
    assert took["n_frames"] == 10 and took["steps_this_run"] == 240 and took["pool_runs"] == 2
    other = replace(members[0].settings, seed=4)  # a record of other settings: run it
    assert adopt(record, "300K", other, members[0].atoms, finals[0]) is None
    diverged = {**record, "runs": {"300K": runs["1"]}}
    assert isinstance(adopt(diverged, "300K", members[1].settings, bad, finals[1]), Diverged)
    path = tmp_path / "pool.json"
    path.write_text(json.dumps(record))
    assert adoptable(path, [str(finals[0])])
    members[0].path.rename(finals[0])  # the md_batch job finished it: no checkpoint left
    assert not adoptable(path, [str(finals[0])])
    assert adopt(record, "300K", members[0].settings, members[0].atoms, finals[0]) is None
    stamp = finals[0].stat().st_mtime_ns
    assert pass_on_finished(finals[0], members[0].settings, members[0].atoms)
    assert partial_of(finals[0]).stat().st_ino == finals[0].stat().st_ino
    assert finals[0].stat().st_mtime_ns == stamp
    assert not pass_on_finished(finals[0], other, members[0].atoms)
    # a shorter run is another run; a longer one extends a copy, never the finished file
    shorter = replace(members[0].settings, production_steps=20)
    assert not pass_on_finished(finals[0], shorter, members[0].atoms)
    longer = replace(members[0].settings, production_steps=80)
    assert not pass_on_finished(finals[0], longer, members[0].atoms)
    assert partial_of(finals[0]).stat().st_ino != finals[0].stat().st_ino
    # the SLURM shape of a pool counts the runs left: none for the finished one
    displace = tmp_path / "displace.json"
    formats.write_result(displace, formats.new_result(
        "natrite", "displace", "ok", supercell=formats.atoms_to_dict(members[0].atoms)))
    settings = tmp_path / "settings.json"
    settings.write_text(members[0].settings.to_json())
    assert pending(str(displace), str(settings), [str(finals[0])]) == (0, "langevin")
    settings.write_text(longer.to_json())
    assert pending(str(displace), str(settings), [str(finals[0])]) == (1, "langevin")


def test_what_a_pool_cannot_run_stays_with_its_material(tmp_path):
    """phonion md_pool with two NaCl cells, one with an md.adaptive override (which a batch
    cannot run): the pool runs the other, records the reason for this one, and this
    material's own md_batch job reports it as an error; the pool job itself succeeds."""
    from ase.build import bulk

    from phonion import formats
    from phonion.cli import main

    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    base = MDSettings(backend="rigid_ion", temperature_K=600.0, equilibration_steps=4,
                      production_steps=8, interval=4, initial_state="maxwell_boltzmann",
                      engine="torch_sim")
    paths = {}
    for mid, s in (("good", base), ("adaptive", replace(base, adaptive=True))):
        d = tmp_path / mid
        (d / "md/600K").mkdir(parents=True)
        formats.write_result(d / "displace.json", formats.new_result(
            mid, "displace", "ok", supercell=formats.atoms_to_dict(atoms)))
        formats.write_result(d / "stability.json", formats.new_result(mid, "stability", "ok"))
        (d / "settings.json").write_text(s.to_json())
        paths[mid] = d
    arg = lambda name: [str(paths[m] / name) for m in paths]  # noqa: E731
    assert main(["md_pool", "--pool", "0000", "--displace", *arg("displace.json"),
                 "--stability", *arg("stability.json"), "--fc2", *arg("fc2.hdf5"),
                 "--settings", *arg("settings.json"), "--temperatures-K", "600",
                 "--trajectory", *arg("md/600K/trajectory.h5"),
                 "--out", *arg("md/pool.json")]) == 0
    good = json.loads((paths["good"] / "md/pool.json").read_text())["runs"]["600K"]
    bad = json.loads((paths["adaptive"] / "md/pool.json").read_text())["runs"]["600K"]
    assert good["status"] == "done" and good["summary"]["n_frames"] == 2
    assert bad["status"] == "not run" and "md.adaptive" in bad["reason"]
    d = paths["adaptive"]
    main(["md_batch", "--displace", str(d / "displace.json"), "--stability",
          str(d / "stability.json"), "--fc2", str(d / "fc2.hdf5"), "--temperatures-K", "600",
          "--settings", replace(base, adaptive=True).to_json(), "--trajectory",
          str(d / "md/600K/trajectory.h5"), "--out", str(d / "md/600K/md.json"),
          f"--pool={d / 'md/pool.json'}"])
    res = json.loads((d / "md/600K/md.json").read_text())
    assert res["status"] == "failed" and "md.adaptive" in res["reason"]


def test_sevennet_batched_by_torch_sim_is_its_calculator():
    """SevenNet-0 through torch-sim's wrapper on a batch of two real cells (natrite with
    unwrapped positions, zabuyelite) gives the forces and energies of the ASE calculator the
    ASE engine uses."""
    pytest.importorskip("sevenn")
    from phonion.calculators import get_calculator
    from phonion.md_batch import _Run, batch_model
    from phonion.md_batch_step import Batch

    model, desc = batch_model("sevenn", "7net-0", "cpu")
    assert model.batched and desc["name"] == "7net-0"
    calc = get_calculator("sevenn", "7net-0").calculator
    rng = np.random.default_rng(0)
    runs = []
    for key, (name, _) in MATERIALS.items():
        atoms = read(STRUCTURES / f"{name}.cif")
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        if key == "natrite":
            atoms.positions[:4] += atoms.cell[0] + atoms.cell[2]  # out of the cell
        r = _Run.__new__(_Run)
        r.m = Member(key, atoms, MDSettings(), None)
        r.s, r.positions = r.m.settings, atoms.positions.copy()
        r.momenta, r.masses = np.zeros_like(atoms.positions), atoms.get_masses()
        r.gen = None
        runs.append(r)
    batch = Batch(runs, model)
    for i, r in enumerate(runs):
        at = r.m.atoms.copy()
        at.calc = calc
        sl = slice(batch.bounds[i], batch.bounds[i + 1])
        np.testing.assert_allclose(batch.raw[sl].numpy(), at.get_forces(), atol=2e-4)
        assert float(batch.epot[i]) == pytest.approx(at.get_potential_energy(), abs=2e-3)


def _md(campaign, mid, T):
    return json.loads((campaign / f"results/materials/{mid}/md/{T}K/md.json").read_text())


def _jobs(dry_run_output: str) -> set[tuple[str, str]]:
    """(rule, material) of every job a dry run lists."""
    import re

    jobs = set()
    for block in re.split(r"\n(?=\s*(?:local)?rule \S+:)", dry_run_output):
        rule = re.match(r"\s*(?:local)?rule (\S+):", block)
        mid = re.search(r"wildcards: .*?mid=([^,\s]+)", block)
        if rule:
            jobs.add((rule[1], mid[1] if mid else ""))
    return jobs


def test_md_engine_torch_sim_through_snakemake(campaign):
    """md.engine torch_sim with md.batch_materials 2: one md_pool job runs NaCl and NaF at
    600 and 900 K as one batch of four runs; each material's md_batch job adopts its runs
    and diffusion reads them as the ASE engine's. Then: a change to one material reruns
    the pool for that material alone (the other is passed on without a step and its jobs do
    not rerun); a deleted trajectory comes back, the run whose checkpoint is gone run again
    to the same trajectory bit for bit; pooling switched off reruns no MD. What the batch
    cannot run (md.adaptive) stops the campaign at parse time with the reason."""
    mids, temps = ("NaCl", "NaF"), (600, 900)
    (campaign / "structures/Na2O.cif").unlink()  # dynamically unstable with rigid_ion
    (campaign / "structures/NaF.cif").write_text((DEMO / "NaF.cif").read_text())
    config = {**RIGID, "structures": {"folder": "structures"},
              "md": {**RIGID["md"], "engine": "torch_sim", "temperatures_K": list(temps),
                     "batch_materials": 2, "equilibration_steps": 8, "production_steps": 40}}
    targets = [f"results/materials/{m}/md/900K/md.json" for m in mids]
    targets.append("results/materials/NaCl/diffusion/900K/diffusion.json")
    out = snakemake(campaign, "--cores", "2", *targets, config=config)
    assert {r for r, _ in _jobs(out.stdout + out.stderr)} >= {"md_pool_0000", "md_batch"}
    for m in mids:
        record = json.loads((campaign / f"results/materials/{m}/md/pool.json").read_text())
        assert record["pool"] == "0000" and record["runs_in_batch"] == 4
        for T in temps:
            md = _md(campaign, m, T)
            assert md["status"] == "ok", md["reason"]
            assert md["engine"] == "torch_sim" and md["n_frames"] == 10
            assert md["pool_runs"] == 4 and md["steps_this_run"] == 48
            assert md["provenance"]["model"]["backend"] == "rigid_ion"
    diff = json.loads((campaign / "results/materials/NaCl/diffusion/900K/diffusion.json"
                       ).read_text())
    assert diff["status"] == "ok", diff["reason"]
    assert "adopted 2 run(s) from pool 0000" in (
        campaign / "results/materials/NaCl/md/md_batch.log").read_text()

    # NaF changes: the pool reruns it alone; NaCl is passed on and none of its jobs rerun
    nacl = campaign / "results/materials/NaCl/md/600K/trajectory.h5"
    before = (nacl.stat().st_mtime_ns, read_trajectory(nacl)["positions_A"])
    changed = {**config, "overrides": {"NaF": {"md": {"seed": 7}}}}
    dry = _jobs(snakemake(campaign, "-n", *targets, config=changed).stdout)
    assert ("md_pool_0000", "") in dry and ("md_batch", "NaF") in dry
    assert not {job for job in dry if job[1] == "NaCl"}, dry
    snakemake(campaign, "--cores", "2", *targets, config=changed)
    runs = json.loads((campaign / "results/materials/NaCl/md/pool.json").read_text())["runs"]
    assert all(e["already_complete"] for e in runs.values())
    assert _md(campaign, "NaF", 600)["steps_this_run"] == 48
    assert nacl.stat().st_mtime_ns == before[0]

    # both names of NaCl's 600 K run deleted, 900 K's trajectory only: 600 K runs in its
    # md_batch job, to the same trajectory; 900 K is adopted from its checkpoint
    nacl.unlink()
    nacl.with_suffix(".partial.h5").unlink()
    (campaign / "results/materials/NaCl/md/900K/trajectory.h5").unlink()
    snakemake(campaign, "--cores", "2", *targets, config=changed)
    assert _md(campaign, "NaCl", 600)["steps_this_run"] == 48
    adopted = _md(campaign, "NaCl", 900)
    assert adopted["steps_this_run"] == 0 and adopted["already_complete"]
    assert adopted["provenance"]["model"]["backend"] == "rigid_ion"
    np.testing.assert_array_equal(read_trajectory(nacl)["positions_A"], before[1])

    # pooling off: the md_batch jobs rerun (another input) and find every run complete
    single = {**changed, "md": {**changed["md"], "batch_materials": 1}}
    snakemake(campaign, "--cores", "2", *targets, config=single)
    for m in mids:
        for T in temps:
            md = _md(campaign, m, T)
            assert md["status"] == "ok" and md["steps_this_run"] == 0, md
    bad = {**config, "md": {**config["md"], "adaptive": {"enabled": True}}}
    proc = snakemake(campaign, "-n", config=bad, check=False)
    assert proc.returncode != 0 and "runs with md.engine ase" in proc.stdout + proc.stderr


def test_the_slurm_profile_sends_a_batch_to_the_gpu_with_its_memory(campaign):
    """With the SLURM profile, each material's md_batch job (two temperatures) asks for
    the GPU and for the memory of two runs; no per-temperature md job is left."""
    import re

    config = {**RIGID, "structures": {"folder": "structures"},
              "calculator": {**RIGID["calculator"], "device": "cuda"},
              "md": {**RIGID["md"], "engine": "torch_sim", "temperatures_K": [600, 800]},
              "slurm": {"md_gpus": 1, "md_mem_mb": 3000}}
    out = snakemake(campaign, "-n", "-p", "--profile", str(ROOT / "profiles/slurm"),
                    config=config).stdout
    blocks = re.split(r"\n(?=\s*(?:local)?rule \S+:)", out)
    gpu = [b for b in blocks if re.search(r"resources:.*\bgpu=1", b)]
    assert [re.match(r"\s*(?:local)?rule (\S+):", b)[1] for b in gpu] == ["md_batch"] * 2
    assert all(re.search(r"\bmem_mb=6000\b", b) for b in gpu)
    assert "rule md:" not in out
    # md.batch_materials 2: one pool job asks for the GPU and the memory of four runs (its
    # members' md_batch jobs are asked again once the pool ran: one core if they only adopt)
    pooled = {**config, "md": {**config["md"], "batch_materials": 2}}
    out = snakemake(campaign, "-n", "-p", "--profile", str(ROOT / "profiles/slurm"),
                    config=pooled).stdout
    blocks = re.split(r"\n(?=\s*(?:local)?rule \S+:)", out)
    pool = [b for b in blocks if re.match(r"\s*(?:local)?rule md_pool_0000:", b)]
    assert len(pool) == 1 and re.search(r"resources:.*\bgpu=1", pool[0])
    assert re.search(r"\bmem_mb=12000\b", pool[0])
