localrules:
    status,


rule status:
    input:
        campaign_results,
    output:
        f"{CAMPAIGN_DIR}/status.tsv",
    log:
        f"{CAMPAIGN_DIR}/status.log",
    params:
        rejected=DISCOVERY.rejected,
    run:
        from phonion.status import campaign_status

        campaign_status(input, output[0], params.rejected, log[0])


onerror:
    from phonion.status import status_after_failure

    status_after_failure(
        {m: [(r[0], r[1], r[4]) for r in material_stages(m)] for m in MATERIALS},
        f"{CAMPAIGN_DIR}/status.tsv",
        DISCOVERY.rejected,
    )
