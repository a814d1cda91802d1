rule forces:
    input:
        displace=stage_path("displace"),
    output:
        **stage_outputs("forces"),
    log:
        stage_log("forces"),
    benchmark:
        stage_path("forces", "benchmark.tsv")
    conda:
        BACKEND_ENV
    params:
        settings=stage_params("forces"),
    shell:
        '"$PHONION_BACKEND_PYTHON" -m phonion forces --displace {input.displace:q} --settings {params.settings:q}'
        ' --forceset {output.forceset:q} --out {output.result:q}'
        " > {log:q} 2>&1"
