rule dft_validation:
    input:
        displace=stage_path("displace"),
        forces=stage_path("forces"),
        forceset=stage_path("forces", "forces.h5"),
        dft_forces=stage_path("dft_forces"),
        dft_forceset=stage_path("dft_forces", "forces.h5"),
    output:
        **stage_outputs("dft_validation"),
    log:
        stage_log("dft_validation"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("dft_validation"),
    shell:
        '"$PHONION_PYTHON" -m phonion dft_validation --displace {input.displace:q} --forces {input.forces:q}'
        " --forceset {input.forceset:q} --dft-forces {input.dft_forces:q} --dft-forceset {input.dft_forceset:q}"
        " --settings {params.settings:q} --arrays {output.arrays:q} --figures {output.figures:q}"
        " --out {output.result:q} > {log:q} 2>&1"


rule validation_table:
    input:
        [stage_path("dft_validation").format(mid=m) for m in sorted(DFT_MATERIALS & set(MATERIALS))],
    output:
        campaign_path("validation.csv"),
    log:
        campaign_path("validation.log"),
    conda:
        WORKFLOW_ENV
    shell:
        '"$PHONION_PYTHON" -m phonion validation_table --results {input:q} --csv {output:q} > {log:q} 2>&1'
