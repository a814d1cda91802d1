rule forces:
    input:
        displace=stage_path("displace"),
    output:
        result=stage_path("forces"),
        forceset=stage_path("forces", "forces.h5"),
    log:
        stage_path("forces", "forces.log"),
    benchmark:
        stage_path("forces", "benchmark.tsv")
    conda:
        BACKEND_ENV
    params:
        settings=stage_params("forces"),
    shell:
        '"$PHONION_BACKEND_PYTHON" -m phonion forces --displace {input.displace:q} --settings {params.settings:q}'
        ' --device "$PHONION_DEVICE" --forceset {output.forceset:q} --out {output.result:q}'
        " > {log:q} 2>&1"
