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
    # (phonion.md_batch); the same md/<T>K outputs the per-temperature rule writes. With
    # md.batch_materials > 1 the runs come from the material's pool (below), read as an
    # ancient input: a pool that reruns for another material reruns nothing here.
    rule md_batch:
        input:
            displace=stage_path("displace"),
            stability=stage_path("stability"),
            fc2=stage_path("fit_ifc", "fc2.hdf5"),
            **(
                {"md_settings": md_settings_file(), "pool": ancient(md_pool_record())}
                if MD_POOLS
                else {}
            ),
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
            gpu=lambda wc, input: md_batch_resource(wc, input, "gpu"),
            cpus_per_task=lambda wc, input: md_batch_resource(
                wc, input, "cpus_per_task"
            ),
            mem_mb=lambda wc, input, attempt: md_batch_resource(
                wc, input, "mem_mb", attempt
            ),
            runtime=lambda wc, input, attempt: md_batch_resource(
                wc, input, "runtime", attempt
            ),
            slurm_partition=lambda wc, input: md_batch_resource(
                wc, input, "slurm_partition"
            ),
        params:
            settings=stage_params("md"),
            temperatures=MD_TEMPERATURES,
            pool=lambda wc: md_pool_record().format(mid=wc.mid) if MD_POOLS else "",
        shell:
            '"$PHONION_BACKEND_PYTHON" -m phonion md_batch --displace {input.displace:q} --stability {input.stability:q}'
            " --fc2 {input.fc2:q} --temperatures-K {params.temperatures:q} --settings {params.settings:q}"
            ' --device "$PHONION_MD_DEVICE" --trajectory {output.trajectories:q} --out {output.results:q}'
            " --pool={params.pool:q} >> {log:q} 2>&1"

    if MD_POOLS:

        # md.batch_materials > 1: each material's md settings as a file, so that a change
        # reaches its md_batch job through an input: Snakemake does not check the params of a
        # job below a pool that reruns when its only link to it is ancient
        rule md_settings:
            output:
                md_settings_file(),
            log:
                f"{MATERIALS_DIR}/{{mid}}/md/settings.log",
            params:
                settings=stage_params("md"),
            localrule: True
            run:
                write_md_settings(output[0], log[0], params.settings)

        # md.batch_materials > 1: one job per pool of materials runs every temperature of each
        # as one batch (phonion.md_pool), writing the runs' checkpoint files and one record per
        # material; a rule per pool, so each material's record has one producer and a pool
        # that gains or loses members reruns without rerunning the members' md_batch jobs
        for _pool, _mids in MD_POOLS.items():

            rule:
                name:
                    f"md_pool_{_pool}"
                input:
                    displace=expand(stage_path("displace"), mid=_mids),
                    stability=expand(stage_path("stability"), mid=_mids),
                    fc2=expand(stage_path("fit_ifc", "fc2.hdf5"), mid=_mids),
                    settings=expand(md_settings_file(), mid=_mids),
                output:
                    expand(md_pool_record(), mid=_mids),
                log:
                    f"{RESULTS}/md_pools/{_pool}.log",
                benchmark:
                    f"{RESULTS}/md_pools/{_pool}.benchmark.tsv"
                conda:
                    BACKEND_ENV
                resources:
                    gpu=lambda wc, input: md_pool_resource(input, "gpu"),
                    cpus_per_task=lambda wc, input: md_pool_resource(input, "cpus_per_task"),
                    mem_mb=lambda wc, input, attempt: md_pool_resource(input, "mem_mb", attempt),
                    runtime=lambda wc, input, attempt: md_pool_resource(input, "runtime", attempt),
                    slurm_partition=lambda wc, input: md_pool_resource(input, "slurm_partition"),
                params:
                    pool=_pool,
                    temperatures=MD_TEMPERATURES,
                    trajectories=[
                        stage_path("md", "trajectory.h5").format(mid=m, T=T)
                        for m in _mids
                        for T in MD_TEMPERATURES
                    ],
                shell:
                    '"$PHONION_BACKEND_PYTHON" -m phonion md_pool --pool {params.pool:q}'
                    " --displace {input.displace:q} --stability {input.stability:q} --fc2 {input.fc2:q}"
                    " --settings {input.settings:q} --temperatures-K {params.temperatures:q}"
                    ' --device "$PHONION_MD_DEVICE" --trajectory {params.trajectories:q}'
                    " --out {output:q} >> {log:q} 2>&1"
