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

{#- A post-hook for every model: an incremental model's watermark column gets an index (its next run reads
    max(_loaded_at), which without one scans the whole table: 1.5 s on two million tickets), and its statistics
    are refreshed after its delete+insert, so the models that filter it by `_loaded_at > <watermark>` are planned
    for the rows that are really new (tables built whole are never filtered by a watermark). -#}
{% macro index_and_analyze_if_incremental() %}
    {%- if model.config.materialized == 'incremental' -%}
    do $$
    begin
        if not exists (
            select 1
            from pg_index as i
            inner join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
            where i.indrelid = to_regclass('{{ this }}') and a.attname = '_loaded_at' and i.indpred is null
        ) then
            create index {{ adapter.quote(this.identifier ~ '__loaded_at') }} on {{ this }} (_loaded_at);
        end if;
        -- a table never analyzed (just built whole) gets statistics on every column; after a delete+insert only
        -- the watermark's move (the others barely change with a run's rows; autovacuum keeps them): a third of
        -- the time on a million rows
        if exists (
            select 1 from pg_stat_user_tables
            where relid = to_regclass('{{ this }}') and coalesce(last_analyze, last_autoanalyze) is not null
        ) then
            analyze {{ this }} (_loaded_at);
        else
            analyze {{ this }};
        end if;
    end
    $$
    {%- endif -%}
{% endmacro %}

{#- The window of a partitioned run (Dagster's daily partitions of the models tagged `daily`: one day, or a
    backfill's range of days in one run): dbt vars partition_start and partition_end, local dates, the end
    excluded. None in any other run. -#}
{% macro partition_window() %}
    {%- set start, end = var('partition_start', none), var('partition_end', none) -%}
    {%- if start is none and end is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if start is none or end is none -%}
        {{ exceptions.raise_compiler_error("partition_start and partition_end go together, got only one") }}
    {%- endif -%}
    {%- set dates = [] -%}
    {%- for value in (start, end) -%}
        {%- set parsed = modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value | string) -%}
        {%- if not parsed -%}
            {{ exceptions.raise_compiler_error("partition_start/partition_end must be YYYY-MM-DD, got " ~ value) }}
        {%- endif -%}
        {%- do dates.append("cast('" ~ value ~ "' as date)") -%}
    {%- endfor -%}
    {{ return({'start': dates[0], 'end': dates[1]}) }}
{% endmacro %}

{#- A pre-hook of a model partitioned by day: a partitioned run empties its window first, so a day that has no
    rows any more is left empty, not stale; the model's delete+insert then writes the window again. -#}
{% macro clear_partition_window(date_column) %}
    {%- set window = partition_window() -%}
    {%- if window and is_incremental() -%}
        delete from {{ this }} where {{ date_column }} >= {{ window.start }} and {{ date_column }} < {{ window.end }}
    {%- endif -%}
{% endmacro %}

{#- A post-hook for an index an incremental model gained after warehouses were built: dbt-postgres creates a
    model's `indexes` only with its relation, so an existing table would never get it. Named after the table,
    created once, and the table analyzed then (an expression index has statistics of its own). -#}
{% macro index_if_missing(suffix, definition) %}
    {%- set name = this.identifier ~ '__' ~ suffix -%}
    do $$
    begin
        if to_regclass('{{ this.schema }}.{{ adapter.quote(name) }}') is null then
            create index {{ adapter.quote(name) }} on {{ this }} {{ definition }};
            analyze {{ this }};
        end if;
    end
    $$
{% endmacro %}

{#- Incremental strategy `changed_rows` (models keyed by one row's key): delete+insert of only the rows whose
    content changed. A row rebuilt identical to the one built before (its sources were touched, nothing it shows
    moved, e.g. a payment's updated_at) keeps its _loaded_at, so the models that read it by watermark do not
    rebuild it either. Columns named _* (load bookkeeping) are not compared. When a build setting (the PII salt,
    the time zone) changed since the model's newest row, every row is replaced, compared or not: its watermark has
    to pass the settings' change, or every build after would rebuild every row again. -#}
{% macro get_incremental_changed_rows_sql(arg_dict) %}
    {%- set target, source, key = arg_dict['target_relation'], arg_dict['temp_relation'], arg_dict['unique_key'] -%}
    {%- if key is not string -%}
        {{ exceptions.raise_compiler_error("changed_rows needs a unique_key of one column, got " ~ key) }}
    {%- endif -%}
    {%- set compared = [] -%}
    {%- for column in arg_dict['dest_columns'] if not column.name.startswith('_') -%}
        {%- do compared.append(column.quoted) -%}
    {%- endfor -%}
    {%- if incremental_watermark() -%}
    delete from {{ source }} as s
    using {{ target }} as t
    where t.{{ key }} = s.{{ key }}
        and (t.{{ compared | join(', t.') }}) is not distinct from (s.{{ compared | join(', s.') }});
    {%- endif %}
    {{ get_delete_insert_merge_sql(target, source, key, arg_dict['dest_columns'], arg_dict['incremental_predicates']) }}
{% endmacro %}
