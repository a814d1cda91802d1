"""Settings of the campaign analysis (config ``campaign``): one frozen dataclass per
campaign stage, on :class:`phonion.settings_base.Settings` (see :mod:`phonion.settings`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .settings_base import Settings


@dataclass(frozen=True)
class CampaignTableSettings(Settings):
    """The campaign table (config ``campaign``): whether runs flagged ``too_short`` or
    ``melted`` enter fits, and an external diffusion table to merge."""

    SECTION: ClassVar[str] = "campaign"
    include_flagged: bool = False
    external_d: str = ""


@dataclass(frozen=True)
class CampaignStatisticsSettings(Settings):
    """Correlations (config ``campaign``)."""

    SECTION: ClassVar[str] = "campaign"
    descriptors: tuple[str, ...] = ()
    n_bootstrap: int = 1000
    fdr_alpha: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class CampaignClusteringSettings(Settings):
    """PCA + k-means (config ``campaign``)."""

    SECTION: ClassVar[str] = "campaign"
    descriptors: tuple[str, ...] = ()
    k_range: tuple[int, int] = (2, 6)
    seed: int = 0


@dataclass(frozen=True)
class CampaignModelSettings(Settings):
    """ML model of diffusion (config ``campaign``)."""

    SECTION: ClassVar[str] = "campaign"
    descriptors: tuple[str, ...] = ()
    temperature_K: float | None = None
    model_min_materials: int = 12
    superionic_threshold_cm2_s: float = 1e-6
    cv_splits: int = 5
    n_estimators: int = 300
    seed: int = 0


@dataclass(frozen=True)
class CampaignFiguresSettings(Settings):
    """Campaign figures (config ``campaign``): only plotting keys."""

    SECTION: ClassVar[str] = "campaign"
    temperature_K: float | None = None
    colormap: str = "viridis"


@dataclass(frozen=True)
class CampaignSummarySettings(Settings):
    """``summary.md`` (config ``campaign``)."""

    SECTION: ClassVar[str] = "campaign"
    top_candidates: int = 10
