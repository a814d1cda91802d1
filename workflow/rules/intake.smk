rule intake:
    input:
        structure_file,
    output:
        **stage_outputs("intake"),
    log:
        stage_log("intake"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("intake"),
    shell:
        '"$PHONION_PYTHON" -m phonion intake --id {wildcards.mid:q} --source {input:q}'
        " --settings {params.settings:q} --out {output.result:q} > {log:q} 2>&1"
