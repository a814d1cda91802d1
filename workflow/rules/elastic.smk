rule elastic:
    input:
        relax=stage_path("relax"),
    output:
        **stage_outputs("elastic"),
    log:
        stage_log("elastic"),
    benchmark:
        stage_path("elastic", "benchmark.tsv")
    conda:
        BACKEND_ENV
    params:
        settings=stage_params("elastic"),
    shell:
        '"$PHONION_BACKEND_PYTHON" -m phonion elastic --relax {input.relax:q}'
        ' --settings {params.settings:q} --out {output.result:q}'
        " > {log:q} 2>&1"
