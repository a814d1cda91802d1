localrules:
    status,
    phonon_figures,


rule status:
    input:
        results=campaign_results,
        figures=phonon_figures,
    output:
        f"{CAMPAIGN_DIR}/status.tsv",
    log:
        f"{CAMPAIGN_DIR}/status.log",
    params:
        rejected=DISCOVERY.rejected,
    run:
        from phonion.status import campaign_status

        campaign_status(input.results, output[0], params.rejected, log[0])
