if not MD_BATCH:

    rule md:
        input:
            displace=stage_path("displace"),
            stability=stage_path("stability"),
            fc2=stage_path("fit_ifc", "fc2.hdf5"),
        output:
            **stage_outputs("md"),
        log:
            stage_log("md"),
        benchmark:
            stage_path("md", "benchmark.tsv")
        conda:
            BACKEND_ENV
        resources:
            gpu=lambda wc, input: md_resource(input, "gpu"),
            cpus_per_task=lambda wc, input: md_resource(input, "cpus_per_task"),
            mem_mb=lambda wc, input, attempt: md_resource(input, "mem_mb", attempt),
            runtime=lambda wc, input, attempt: md_resource(input, "runtime", attempt),
            slurm_partition=lambda wc, input: md_resource(input, "slurm_partition"),
        params:
            settings=stage_params("md"),
        shell:
            '"$PHONION_BACKEND_PYTHON" -m phonion md --displace {input.displace:q} --stability {input.stability:q}'
            " --fc2 {input.fc2:q} --temperature-K {wildcards.T:q} --settings {params.settings:q}"
            ' --device "$PHONION_MD_DEVICE" --trajectory {output.trajectory:q} --out {output.result:q}'
            " >> {log:q} 2>&1"

else:

    # md.engine torch_sim: every temperature of a material as one batch, one job
    # (phonion.md_batch); the same md/<T>K outputs the per-temperature rule writes
    rule md_batch:
        input:
            displace=stage_path("displace"),
            stability=stage_path("stability"),
            fc2=stage_path("fit_ifc", "fc2.hdf5"),
        output:
            results=expand(stage_path("md"), T=MD_TEMPERATURES, allow_missing=True),
            trajectories=expand(
                stage_path("md", "trajectory.h5"), T=MD_TEMPERATURES, allow_missing=True
            ),
        log:
            stage_log("md"),
        benchmark:
            f"{MATERIALS_DIR}/{{mid}}/md/benchmark.tsv"
        conda:
            BACKEND_ENV
        resources:
            gpu=lambda wc, input: md_resource(input, "gpu"),
            cpus_per_task=lambda wc, input: md_resource(input, "cpus_per_task"),
            mem_mb=lambda wc, input, attempt: md_resource(
                input, "mem_mb", attempt, MD_BATCH_SIZE
            ),
            runtime=lambda wc, input, attempt: md_resource(input, "runtime", attempt),
            slurm_partition=lambda wc, input: md_resource(input, "slurm_partition"),
        params:
            settings=stage_params("md"),
            temperatures=MD_TEMPERATURES,
        shell:
            '"$PHONION_BACKEND_PYTHON" -m phonion md_batch --displace {input.displace:q} --stability {input.stability:q}'
            " --fc2 {input.fc2:q} --temperatures-K {params.temperatures:q} --settings {params.settings:q}"
            ' --device "$PHONION_MD_DEVICE" --trajectory {output.trajectories:q} --out {output.results:q}'
            " >> {log:q} 2>&1"
