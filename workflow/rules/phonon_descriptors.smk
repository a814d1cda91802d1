rule phonon_descriptors:
    input:
        displace=material_path("displace", "displace.json"),
        stability=material_path("stability", "stability.json"),
        fc2=material_path("fit_ifc", "fc2.hdf5"),
    output:
        result=material_path("phonons", "phonons.json"),
        modes=material_path("phonons", "modes.h5"),
        figures=multiext(material_path("phonons", "msd_modes"), ".png", ".svg")
        + multiext(material_path("phonons", "coupling_pdos"), ".png", ".svg"),
    params:
        python=sys.executable,
        settings=settings_json("phonons"),
        mobile=config["mobile_ion"],
        fig_msd=lambda wc, output: output.figures[0][:-4],
        fig_coupling=lambda wc, output: output.figures[2][:-4],
    log:
        material_path("phonons", "phonons.log"),
    benchmark:
        material_path("phonons", "benchmark.tsv")
    conda:
        "../../envs/phonion.yaml"
    shell:
        "{params.python} -m phonion phonons --displace {input.displace:q}"
        " --stability {input.stability:q} --fc2 {input.fc2:q} --settings {params.settings:q}"
        " --mobile-ion {params.mobile} --out {output.result:q} --modes {output.modes:q}"
        " --fig-msd {params.fig_msd:q} --fig-coupling {params.fig_coupling:q} > {log:q} 2>&1"
