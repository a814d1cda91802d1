rule md:
    input:
        displace=material_path("displace", "displace.json"),
        stability=material_path("stability", "stability.json"),
        fc2=material_path("fit_ifc", "fc2.hdf5"),
    output:
        result=material_path("md", "{T}K/md.json"),
        trajectory=material_path("md", "{T}K/trajectory.h5"),
    log:
        material_path("md", "{T}K/md.log"),
    benchmark:
        material_path("md", "{T}K/benchmark.tsv")
    conda:
        backend_conda_env()
    resources:
        runtime=config["slurm"]["md_runtime_min"],
    params:
        python=backend_python(),
        pythonpath=pythonpath(),
        settings=settings_json("md"),
        calculator=calculator_json(),
        fit=settings_json("diffusion"),
        mobile=config["mobile_ion"],
    shell:
        "{params.pythonpath} {params.python} -m phonion md --displace {input.displace:q}"
        " --stability {input.stability:q} --temperature {wildcards.T}"
        " --settings {params.settings:q} --calculator {params.calculator:q}"
        " --diffusion-settings {params.fit:q} --mobile-ion {params.mobile}"
        " --fc2 {input.fc2:q}"
        " --trajectory {output.trajectory:q} --out {output.result:q} >> {log:q} 2>&1"
