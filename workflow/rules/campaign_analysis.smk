# Campaign analysis (docs/campaign.md): table -> statistics, clustering, model -> figures,
# summary. Aggregate rules over all materials; their params carry only the campaign
# settings (config `campaign`), so a campaign key reruns these rules and never a
# material's chain. Cheap: they run on the submitting node.


localrules:
    campaign_inputs,
    campaign_table,
    campaign_statistics,
    campaign_clustering,
    campaign_model,
    campaign_figures,
    campaign_summary,


# the list of result files goes through a file: no command line to overflow
rule campaign_inputs:
    input:
        campaign_results,
    output:
        campaign_path("table_inputs.txt"),
    log:
        campaign_path("table_inputs.log"),
    run:
        write_list(output[0], input, log[0])


rule campaign_table:
    input:
        results=campaign_path("table_inputs.txt"),
        external=campaign_external_d,
    output:
        result=campaign_path("table.json"),
        csv=campaign_path("table.csv"),
        parquet=campaign_path("table.parquet"),
    log:
        campaign_path("table.log"),
    conda:
        WORKFLOW_ENV
    params:
        settings=campaign_settings("table"),
    shell:
        '"$PHONION_PYTHON" -m phonion campaign_table --results {input.results:q}'
        " --csv {output.csv:q} --parquet {output.parquet:q} --settings {params.settings:q}"
        " --out {output.result:q} > {log:q} 2>&1"


rule campaign_statistics:
    input:
        result=campaign_path("table.json"),
        table=campaign_path("table.parquet"),
    output:
        result=campaign_path("statistics.json"),
        csv=campaign_path("correlations.csv"),
    log:
        campaign_path("statistics.log"),
    conda:
        WORKFLOW_ENV
    params:
        settings=campaign_settings("statistics"),
    shell:
        '"$PHONION_PYTHON" -m phonion campaign_statistics --table {input.table:q}'
        " --table-result {input.result:q} --csv {output.csv:q} --settings {params.settings:q}"
        " --out {output.result:q} > {log:q} 2>&1"


rule campaign_clustering:
    input:
        result=campaign_path("table.json"),
        table=campaign_path("table.parquet"),
    output:
        result=campaign_path("clustering.json"),
        csv=campaign_path("clusters.csv"),
    log:
        campaign_path("clustering.log"),
    conda:
        WORKFLOW_ENV
    params:
        settings=campaign_settings("clustering"),
    shell:
        '"$PHONION_PYTHON" -m phonion campaign_clustering --table {input.table:q}'
        " --table-result {input.result:q} --csv {output.csv:q} --settings {params.settings:q}"
        " --out {output.result:q} > {log:q} 2>&1"


rule campaign_model:
    input:
        result=campaign_path("table.json"),
        table=campaign_path("table.parquet"),
    output:
        result=campaign_path("model.json"),
        parity=campaign_path("model_parity.csv"),
        predictions=campaign_path("model_predictions.csv"),
    log:
        campaign_path("model.log"),
    conda:
        WORKFLOW_ENV
    params:
        settings=campaign_settings("model"),
    shell:
        '"$PHONION_PYTHON" -m phonion campaign_model --table {input.table:q}'
        " --table-result {input.result:q} --parity {output.parity:q}"
        " --predictions {output.predictions:q} --settings {params.settings:q}"
        " --out {output.result:q} > {log:q} 2>&1"


rule campaign_figures:
    input:
        result=campaign_path("table.json"),
        table=campaign_path("table.parquet"),
        statistics=campaign_path("statistics.json"),
        clustering=campaign_path("clustering.json"),
        clusters=campaign_path("clusters.csv"),
        model=campaign_path("model.json"),
        parity=campaign_path("model_parity.csv"),
    output:
        result=campaign_path("figures.json"),
        figures=report(
            directory(campaign_path("figures")),
            patterns=["{name}.png"],
            caption="../report/campaign.rst",
            category="Campaign",
        ),
    log:
        campaign_path("figures.log"),
    conda:
        WORKFLOW_ENV
    params:
        settings=campaign_settings("figures"),
    shell:
        '"$PHONION_PYTHON" -m phonion campaign_figures --table {input.table:q}'
        " --table-result {input.result:q} --statistics {input.statistics:q}"
        " --clustering {input.clustering:q} --clusters {input.clusters:q}"
        " --model {input.model:q} --parity {input.parity:q} --figures {output.figures:q}"
        " --settings {params.settings:q} --out {output.result:q} > {log:q} 2>&1"


rule campaign_summary:
    input:
        result=campaign_path("table.json"),
        table=campaign_path("table.parquet"),
        statistics=campaign_path("statistics.json"),
        clustering=campaign_path("clustering.json"),
        model=campaign_path("model.json"),
        predictions=campaign_path("model_predictions.csv"),
    output:
        result=campaign_path("summary.json"),
        summary=report(
            campaign_path("summary.md"),
            caption="../report/campaign_summary.rst",
            category="Campaign",
        ),
    log:
        campaign_path("summary.log"),
    conda:
        WORKFLOW_ENV
    params:
        settings=campaign_settings("summary"),
    shell:
        '"$PHONION_PYTHON" -m phonion campaign_summary --table-result {input.result:q}'
        " --table {input.table:q}"
        " --statistics {input.statistics:q} --clustering {input.clustering:q}"
        " --model {input.model:q} --predictions {input.predictions:q}"
        " --summary {output.summary:q} --settings {params.settings:q}"
        " --out {output.result:q} > {log:q} 2>&1"
