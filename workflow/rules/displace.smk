rule displace:
    input:
        relax=stage_path("relax"),
    output:
        stage_path("displace"),
    log:
        stage_path("displace", "displace.log"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("displace"),
    shell:
        '"$PHONION_PYTHON" -m phonion displace --relax {input.relax:q} --settings {params.settings:q}'
        " --out {output:q} > {log:q} 2>&1"
