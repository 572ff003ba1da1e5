{#- The watermark of an incremental model: the newest _loaded_at of its rows, as a literal, so that the planner
    estimates what changed after it from the column's statistics and reads it through raw's indexes (a
    subquery would be estimated at a third of the table, and read by scanning it). None when the model is
    built whole: its first build, --full-refresh, or, for a model that uses them (`uses_settings`), a build
    setting (the PII salt, the time zone) changed since. -#}
{% macro incremental_watermark(uses_settings=true) %}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set settings_changed -%}
        {%- if uses_settings -%}
            (select max(changed_at) from {{ source('boxoffice', 'build_settings') }})
        {%- else -%}
            null::timestamptz
        {%- endif -%}
    {%- endset -%}
    {%- set row = run_query(
        "select max(_loaded_at)::text, " ~ settings_changed ~ " > max(_loaded_at) from " ~ this
    ).rows[0] -%}
    {%- if row[0] is none or row[1] -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return("cast('" ~ row[0] ~ "' as timestamptz)") }}
{% endmacro %}

{#- A post-hook for every model: an incremental model's statistics are refreshed after its delete+insert, so
    the models that filter it by `_loaded_at > <watermark>` are planned for the rows that are really new
    (tables built whole are never filtered by a watermark). -#}
{% macro analyze_if_incremental() %}
    {%- if model.config.materialized == 'incremental' -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}
