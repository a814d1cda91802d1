"""MLP adapters: offline loading of shipped weights, clear refusals, element coverage."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from ase.build import bulk

from phonion.calculators import BACKENDS, check_elements, get_calculator
from phonion.errors import ModelUnavailable, UnsupportedElements


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_registry_lists_every_backend():
    assert set(BACKENDS) == {"rigid_ion", "mace", "fairchem", "chgnet", "sevenn"}


def test_unknown_backend():
    with pytest.raises(ModelUnavailable, match="calculator.backend"):
        get_calculator("lammps")


def _nacl_check(loaded):
    atoms = bulk("NaCl", "rocksalt", a=5.64) * (2, 2, 2)
    atoms.calc = loaded.calculator
    e0 = atoms.get_potential_energy() / len(atoms)
    f0 = atoms.get_forces()
    assert np.abs(f0).max() < 1e-3  # every site is an inversion centre: forces vanish
    assert -5.0 < e0 < -2.0  # eV/atom, PBE-like scale of NaCl (about -3.4)
    check_elements(loaded, ["Na", "Cl"])
    d = loaded.description
    assert d["sha256"] and len(d["sha256"]) == 64 and d["package_version"]


@pytest.mark.skipif(not _has("sevenn"), reason="sevenn not installed")
def test_sevenn_loads_offline():
    _nacl_check(get_calculator("sevenn", "7net-0", "cpu"))


@pytest.mark.skipif(not _has("sevenn"), reason="sevenn not installed")
def test_sevenn_model_cache_gives_sevenns_own_forces_and_rebuilds_a_damaged_entry(
        tmp_path, monkeypatch):
    """The built network is pickled once and unpickled afterwards: forces, energy and
    stress equal those of SevenNet's own checkpoint loading (float32); a damaged entry is
    rebuilt, ``off`` keeps nothing."""
    from sevenn.calculator import SevenNetCalculator

    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.rattle(0.05, seed=2)
    ref = atoms.copy()
    ref.calc = SevenNetCalculator(model="7net-0", device="cpu")
    monkeypatch.setenv("PHONION_MODEL_CACHE", str(tmp_path / "cache"))

    def same():
        mine = atoms.copy()
        mine.calc = get_calculator("sevenn", "7net-0", "cpu").calculator
        assert np.allclose(mine.get_forces(), ref.get_forces(), atol=1e-5)
        assert mine.get_potential_energy() == pytest.approx(ref.get_potential_energy(),
                                                            abs=1e-5)
        assert np.allclose(mine.get_stress(), ref.get_stress(), atol=1e-7)

    same()  # builds and keeps
    (entry,) = (tmp_path / "cache").iterdir()
    assert entry.name.startswith("sevenn-") and entry.stat().st_size > 1e6
    same()  # from the cache
    entry.write_bytes(entry.read_bytes()[:1000])  # damaged
    same()
    assert entry.stat().st_size > 1e6  # rebuilt
    entry.unlink()
    monkeypatch.setenv("PHONION_MODEL_CACHE", "off")
    same()
    assert not any((tmp_path / "cache").iterdir())


@pytest.mark.skipif(not _has("sevenn"), reason="sevenn not installed")
def test_sevenn_refuses_download():
    with pytest.raises(ModelUnavailable, match="calculator.model"):
        get_calculator("sevenn", "7net-omat", "cpu")


@pytest.mark.skipif(not _has("chgnet"), reason="chgnet not installed")
def test_chgnet_loads_offline():
    _nacl_check(get_calculator("chgnet", "0.3.0", "cpu"))


@pytest.mark.skipif(not _has("chgnet"), reason="chgnet not installed")
def test_chgnet_unknown_name():
    with pytest.raises(ModelUnavailable, match="calculator.model"):
        get_calculator("chgnet", "0.9.9", "cpu")


def test_fairchem_name_or_missing_package_is_refused():
    # a hub name must never trigger a download; without fairchem-core the message
    # points to the per-backend environment instead
    with pytest.raises(ModelUnavailable, match="calculator.model|environments.fairchem"):
        get_calculator("fairchem", "uma-s-1p1", "cpu")


@pytest.mark.skipif(_has("mace"), reason="mace-torch is installed here")
def test_mace_missing_points_to_its_environment():
    with pytest.raises(ModelUnavailable, match="environments.mace"):
        get_calculator("mace", "medium-mpa-0", "cpu")


def test_unsupported_elements_named():
    loaded = get_calculator("rigid_ion")
    with pytest.raises(UnsupportedElements, match="P, Sb"):
        check_elements(loaded, ["Na", "Sb", "P", "S"])
