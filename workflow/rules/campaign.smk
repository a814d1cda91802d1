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
