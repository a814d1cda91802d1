rule stability_recheck:
    input:
        displace=stage_path("displace"),
        stability=stage_path("stability"),
        forceset=stage_path("forces", "forces.h5"),  # the first model's: the committee
    output:
        **stage_outputs("stability_recheck"),
    log:
        stage_log("stability_recheck"),
    conda:
        RECHECK_ENV
    params:
        settings=stage_params("stability_recheck"),
    shell:
        '"$PHONION_RECHECK_PYTHON" -m phonion stability_recheck --displace {input.displace:q}'
        ' --stability {input.stability:q} --forceset {input.forceset:q}'
        ' --settings {params.settings:q}'
        " --out {output.result:q} > {log:q} 2>&1"
