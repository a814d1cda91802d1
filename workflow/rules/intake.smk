rule intake:
    input:
        structure_file,
    output:
        stage_path("intake"),
    log:
        stage_path("intake", "intake.log"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("intake"),
    shell:
        '"$PHONION_PYTHON" -m phonion intake --id {wildcards.mid:q} --source {input:q}'
        " --settings {params.settings:q} --out {output:q} > {log:q} 2>&1"
