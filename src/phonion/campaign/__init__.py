"""Campaign analysis: the campaign table, correlation statistics, PCA + k-means, an ML
model of diffusion, figures and the summary (docs/campaign.md).

Modules take data frames and plain settings and return plain data; no Snakemake, no
per-material file layout beyond :mod:`phonion.campaign.table`, which reads the stage
results once and hands every other module one table.
"""
