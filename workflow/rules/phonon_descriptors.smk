checkpoint phonon_descriptors:
    input:
        displace=material_path("displace", "displace.json"),
        stability=material_path("stability", "stability.json"),
        fc2=material_path("fit_ifc", "fc2.hdf5"),
    output:
        result=material_path("phonons", "phonons.json"),
        modes=material_path("phonons", "modes.h5"),
    log:
        material_path("phonons", "phonons.log"),
    benchmark:
        material_path("phonons", "benchmark.tsv")
    conda:
        "../../envs/phonion.yaml"
    params:
        python=sys.executable,
        settings=settings_json("phonons"),
        mobile=config["mobile_ion"],
    shell:
        "{params.python} -m phonion phonons --displace {input.displace:q}"
        " --stability {input.stability:q} --fc2 {input.fc2:q} --settings {params.settings:q}"
        " --mobile-ion {params.mobile} --out {output.result:q} --modes {output.modes:q}"
        " > {log:q} 2>&1"


rule phonon_figures:
    input:
        result=material_path("phonons", "phonons.json"),
        modes=material_path("phonons", "modes.h5"),
    output:
        msd=report(
            multiext(material_path("phonons", "msd_modes"), ".png", ".svg"),
            caption="../report/msd_modes.rst",
            category="Phonons",
            subcategory="{mid}",
        ),
        coupling=report(
            multiext(material_path("phonons", "coupling_pdos"), ".png", ".svg"),
            caption="../report/coupling_pdos.rst",
            category="Phonons",
            subcategory="{mid}",
        ),
    log:
        material_path("phonons", "figures.log"),
    conda:
        "../../envs/phonion.yaml"
    params:
        python=sys.executable,
        fig_msd=lambda wc, output: output.msd[0][:-4],
        fig_coupling=lambda wc, output: output.coupling[0][:-4],
    shell:
        "{params.python} -m phonion phonon-figures --phonons {input.result:q}"
        " --modes {input.modes:q} --fig-msd {params.fig_msd:q}"
        " --fig-coupling {params.fig_coupling:q} > {log:q} 2>&1"
