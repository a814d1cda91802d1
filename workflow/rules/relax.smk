checkpoint relax:
    input:
        material_path("intake", "intake.json"),
    output:
        result=material_path("relax", "relax.json"),
        poscar=material_path("relax", "POSCAR"),
    log:
        material_path("relax", "relax.log"),
    benchmark:
        material_path("relax", "benchmark.tsv")
    conda:
        backend_conda_env()
    resources:
        runtime=config["slurm"]["relax_runtime_min"],
        mem_mb=config["slurm"]["relax_mem_mb"],
    params:
        python=backend_python(),
        pythonpath=pythonpath(),
        settings=settings_json("relax"),
        calculator=calculator_json(),
    shell:
        "{params.pythonpath} {params.python} -m phonion relax --input {input:q} --settings {params.settings:q}"
        " --calculator {params.calculator:q} --out {output.result:q}"
        " --structure-out {output.poscar:q} > {log:q} 2>&1"
