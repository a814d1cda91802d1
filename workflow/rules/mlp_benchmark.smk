rule mlp_benchmark:
    input:
        displace=stage_path("displace"),
        dft_forces=stage_path("dft_forces"),
        dft_forceset=stage_path("dft_forces", "forces.h5"),
        # the fine-tuned model is written by the finetune job of this campaign
        model=lambda wc: [FINETUNED_MODEL] if wc.bm == "finetuned" else [],
    output:
        result=f"{MATERIALS_DIR}/{{mid}}/mlp_benchmark/{{bm}}/mlp_benchmark.json",
    log:
        f"{MATERIALS_DIR}/{{mid}}/mlp_benchmark/{{bm}}/mlp_benchmark.log",
    conda:
        lambda wc: BENCHMARK_ENVS[wc.bm]
    params:
        settings=stage_params("dft_validation"),
        model=lambda wc: json.dumps(BENCHMARK_MODELS[wc.bm], sort_keys=True),
        backend=lambda wc: BENCHMARK_MODELS[wc.bm]["backend"],  # a schema enum: safe in a name
    shell:
        '"$PHONION_PYTHON_{params.backend}" -m phonion mlp_benchmark --displace {input.displace:q}'
        " --dft-forces {input.dft_forces:q} --dft-forceset {input.dft_forceset:q} --model-json {params.model:q}"
        ' --settings {params.settings:q} --out {output.result:q} > {log:q} 2>&1'


rule mlp_benchmark_table:
    input:
        benchmark_results,
    output:
        csv=campaign_path("mlp_benchmark.csv"),
        summary=campaign_path("mlp_benchmark_summary.csv"),
        figure=report(
            campaign_path("mlp_benchmark.png"),
            caption="../report/mlp_benchmark.rst",
            category="Validation",
        ),
    log:
        campaign_path("mlp_benchmark.log"),
    conda:
        WORKFLOW_ENV
    shell:
        '"$PHONION_PYTHON" -m phonion mlp_benchmark_table --results {input:q} --csv {output.csv:q}'
        " --summary {output.summary:q} --figure {output.figure:q} > {log:q} 2>&1"
