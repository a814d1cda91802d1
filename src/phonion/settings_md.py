"""Settings of MD and its analyses (config ``md``, ``diffusion``, ``dynamics``,
``arrhenius``): one frozen dataclass per stage on :class:`phonion.settings_base.Settings`
(see :mod:`phonion.settings`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from .settings_base import CalculatorSettings, Settings, canonical_json
from .settings_base import config_field as _from


@dataclass(frozen=True)
class MDSettings(CalculatorSettings):
    """NVT MD of one material at one temperature (config ``md``; the temperature is the
    job's wildcard, not a setting of the list ``md.temperatures_K``, so adding a
    temperature runs only that temperature's MD)."""

    SECTION: ClassVar[str] = "md"
    temperature_K: float = field(default=800.0, metadata={"wildcard": True})
    timestep_fs: float = 1.5
    equilibration_steps: int = 10_000
    production_steps: int = 40_000
    interval: int = 4
    thermostat: str = "langevin"  # langevin | bussi | nose_hoover_chain
    #: ase: one ASE loop per run; torch_sim: the material's temperatures as one batch
    #: (phonion.md_batch), part of the fingerprint: another engine starts the run over
    engine: str = "ase"
    initial_state: str = "harmonic"  # harmonic (from fc2, when given) | maxwell_boltzmann
    friction_per_fs: float = 0.01  # Langevin
    tau_fs: float = 100.0  # Bussi / Nosé–Hoover damping time
    seed: int = 0
    max_force_eV_A: float = 50.0
    max_temperature_factor: float = 5.0
    min_distance_A: float = 0.5
    adaptive: bool = _from("md.adaptive.enabled", False)
    adaptive_target_rel_stderr: float = _from("md.adaptive.target_rel_stderr", 0.1)
    adaptive_chunk_steps: int = _from("md.adaptive.chunk_steps", 10_000)
    adaptive_max_production_steps: int = _from("md.adaptive.max_production_steps", 200_000)
    adaptive_min_duration_ps: float = _from("md.adaptive.min_duration_ps", 5.0)
    mobile_ion: str = _from("mobile_ion", "Na")  # the adaptive stopping rule's ion

    def canonical(self) -> MDSettings:
        s = self
        if s.thermostat != "langevin":
            s = dataclasses.replace(s, friction_per_fs=0.01)
        if s.thermostat == "langevin":
            s = dataclasses.replace(s, tau_fs=100.0)
        if not s.adaptive:
            s = dataclasses.replace(
                s, adaptive_target_rel_stderr=0.1, adaptive_chunk_steps=10_000,
                adaptive_max_production_steps=200_000, adaptive_min_duration_ps=5.0,
                mobile_ion="Na")
        return s

    def to_json(self) -> str:
        # the default engine is left out: campaigns (and trajectories) made before the
        # engine became a setting keep their params, and their MD does not rerun
        return canonical_json(self, () if self.engine != "ase" else ("engine",))

    def run_fingerprint(self) -> dict:
        """The settings that define a trajectory apart from its length (a longer run
        extends an existing trajectory instead of restarting it)."""
        d = dataclasses.asdict(self)
        if d["engine"] == "ase":  # as trajectories written before the engine setting
            d.pop("engine")
        for key in ("production_steps", "mobile_ion"):
            d.pop(key)
        for key in [k for k in d if k.startswith("adaptive")]:
            d.pop(key)
        return d


@dataclass(frozen=True)
class DiffusionSettings(Settings):
    """Diffusion analysis of a trajectory (config ``diffusion`` and ``mobile_ion``)."""

    SECTION: ClassVar[str] = "diffusion"
    mobile_ion: str = _from("mobile_ion", "Na")
    estimator: str = "gls"  # "blocks" (time blocks) or "seed000" (through the origin)
    resolution_cm2_s: float = 1e-6  # bound below it: "does not diffuse"
    n_blocks: int = 5
    diffusive_slope: float = 0.5
    window: tuple[float, float] = (0.1, 0.5)  # seed000 estimator only
    weighting: str = "inverse_time"  # seed000 estimator only
    melt_d_threshold_A2_ps: float = 0.01
    melt_displacement_A: float = 4.0
    min_duration_ps: float = 5.0
    #: seed 003's MD-VDOS descriptors (thermodynamics, mean frequencies, Debye temperature,
    #: Lindemann ratio: phonion.anharmonic)
    anharmonic_descriptors: bool = True
    #: the MD's vibrational MSD against the harmonic one of the same modes (seed 000 §3.1)
    harmonic_comparison: bool = True


@dataclass(frozen=True)
class DynamicsSettings(Settings):
    """Optional structure and dynamics analyses (config ``dynamics``)."""

    SECTION: ClassVar[str] = "dynamics"
    mobile_ion: str = _from("mobile_ion", "Na")
    rdf: bool = False
    van_hove: bool = False
    reorientation: bool = False
    tetrahedra: bool = False
    r_max_A: float = 8.0
    bin_A: float = 0.05
    max_frames: int = 200
    van_hove_lags: int = 8
    rotation_threshold: float = 0.9
    diffusion_tmsd_A2: float = 5.0
    melt_tmsd_A2: float = 2.0
    hop_distance_A: float = 3.8
    hop_residence_ps: float = 3.0
    hop_window_ps: float = 9.0
    angle_filter_cm1: float | None = 5.0
    density: bool = False
    density_spacing_A: float = 0.25
    rdf_all_pairs: bool = False

    ANALYSES: ClassVar[tuple[str, ...]] = ("rdf", "van_hove", "reorientation", "tetrahedra",
                                           "density")

    @property
    def analyses(self) -> list[str]:
        return [a for a in self.ANALYSES if getattr(self, a)]


@dataclass(frozen=True)
class ArrheniusSettings(Settings):
    """Arrhenius fit and Nernst–Einstein conductivity (``mobile_ion``, its charge)."""

    SECTION: ClassVar[str] = "arrhenius"
    mobile_ion: str = _from("mobile_ion", "Na")
    charge: int | None = _from("mobile_ion_charge", None)
