rule fit_ifc:
    input:
        displace=stage_path("displace"),
        forces=stage_path("forces"),
        forceset=stage_path("forces", "forces.h5"),
    output:
        **stage_outputs("fit_ifc"),
    log:
        stage_log("fit_ifc"),
    benchmark:
        stage_path("fit_ifc", "benchmark.tsv")
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("fit_ifc"),
        fc3=lambda wc, output: output.get("fc3", ""),
    shell:
        '"$PHONION_PYTHON" -m phonion fit_ifc --displace {input.displace:q} --forces {input.forces:q}'
        " --forceset {input.forceset:q} --settings {params.settings:q}"
        ' --pheasy-python="$PHONION_PHEASY_PYTHON" --fc2 {output.fc2:q} --fc3={params.fc3:q}'
        " --out {output.result:q} > {log:q} 2>&1"
