localrules:
    material,
    status,
    phonon_figures,
    diffusion_figures,


rule material:
    input:
        results=material_results,
        figures=material_figures,
    output:
        f"{MATERIALS_DIR}/{{mid}}/material.json",
    log:
        f"{MATERIALS_DIR}/{{mid}}/material.log",
    run:
        from phonion.status import material_record

        material_record(
            wildcards.mid, input.results, input.figures, output[0], log[0]
        )


rule status:
    input:
        expand(f"{MATERIALS_DIR}/{{mid}}/material.json", mid=MATERIALS),
    output:
        f"{CAMPAIGN_DIR}/status.tsv",
    log:
        f"{CAMPAIGN_DIR}/status.log",
    params:
        rejected=DISCOVERY.rejected,
    run:
        from phonion.status import campaign_status

        campaign_status(input, output[0], params.rejected, log[0])
