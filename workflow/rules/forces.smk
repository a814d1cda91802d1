rule forces:
    input:
        material_path("displace", "displace.json"),
    output:
        result=material_path("forces", "forces.json"),
        forceset=material_path("forces", "forces.h5"),
    log:
        material_path("forces", "forces.log"),
    benchmark:
        material_path("forces", "benchmark.tsv")
    conda:
        backend_conda_env()
    params:
        python=backend_python(),
        pythonpath=pythonpath(),
        calculator=calculator_json(),
    shell:
        "{params.pythonpath} {params.python} -m phonion forces --input {input:q}"
        " --calculator {params.calculator:q} --forceset {output.forceset:q}"
        " --out {output.result:q} > {log:q} 2>&1"
