rule dft_forces:
    input:
        displace=stage_path("displace"),
    output:
        **stage_outputs("dft_forces"),
    log:
        stage_log("dft_forces"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("dft_forces"),
        workdir=stage_path("dft_forces", "runs"),
    shell:
        '"$PHONION_PYTHON" -m phonion dft_forces --displace {input.displace:q} --settings {params.settings:q}'
        ' --workdir {params.workdir:q} --run-command="$PHONION_DFT_COMMAND" --gamma-command="$PHONION_DFT_GAMMA_COMMAND"'
        ' --timeout-min="$PHONION_DFT_TIMEOUT_MIN" --forceset {output.forceset:q} --out {output.result:q} > {log:q} 2>&1'
