rule displace:
    input:
        relax=stage_path("relax"),
    output:
        **stage_outputs("displace"),
    log:
        stage_log("displace"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("displace"),
    shell:
        '"$PHONION_PYTHON" -m phonion displace --relax {input.relax:q} --settings {params.settings:q}'
        " --out {output.result:q} > {log:q} 2>&1"
