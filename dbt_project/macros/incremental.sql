{#- The watermark of an incremental model: the newest _loaded_at of its rows, as a literal, so that the planner
    estimates what changed after it from the column's statistics and reads it through raw's indexes (a
    subquery would be estimated at a third of the table, and read by scanning it). None when the model is
    built whole: its first build, --full-refresh, or, for a model that uses them (`uses_settings`), a build
    setting (the PII salt, the time zone) changed since. -#}
{% macro incremental_watermark(uses_settings=true) %}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {#- a table built whole before the model became incremental has no watermark: built whole once more -#}
    {%- if '_loaded_at' not in adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
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
    to pass the settings' change, or every build after would rebuild every row again.
    With config `log_replaced_rows: true` the rows it replaces are kept (macro log_replaced_rows). -#}
{% macro get_incremental_changed_rows_sql(arg_dict) %}
    {%- set target, source, key = arg_dict['target_relation'], arg_dict['temp_relation'], arg_dict['unique_key'] -%}
    {%- if key is not string -%}
        {{ exceptions.raise_compiler_error("changed_rows needs a unique_key of one column, got " ~ key) }}
    {%- endif -%}
    {%- set compared = compared_columns(arg_dict['dest_columns']) -%}
    {%- if incremental_watermark() -%}
    delete from {{ source }} as s
    using {{ target }} as t
    where t.{{ key }} = s.{{ key }}
        and (t.{{ compared | join(', t.') }}) is not distinct from (s.{{ compared | join(', s.') }});
    {%- endif %}
    {% if config.get('log_replaced_rows', false) -%}
    {{ log_replaced_rows(target, source, key, arg_dict['dest_columns']) }}
    {%- endif %}
    {{ get_delete_insert_merge_sql(target, source, key, arg_dict['dest_columns'], arg_dict['incremental_predicates']) }}
{% endmacro %}

{#- The columns changed_rows and changed_groups compare (quoted): all but those named _* (load bookkeeping). -#}
{% macro compared_columns(dest_columns) %}
    {%- set compared = [] -%}
    {%- for column in dest_columns if not column.name.startswith('_') -%}
        {%- do compared.append(column.quoted) -%}
    {%- endfor -%}
    {{ return(compared) }}
{% endmacro %}

{#- Incremental strategy `changed_groups` (models keyed by a group of rows, e.g. a settlement's items of one
    payment): like changed_rows, by group. A group rebuilt with the very rows it had (compared as a set, columns
    named _* left out) is left as it is. -#}
{% macro get_incremental_changed_groups_sql(arg_dict) %}
    {%- set target, source = arg_dict['target_relation'], arg_dict['temp_relation'] -%}
    {%- set keys = [arg_dict['unique_key']] if arg_dict['unique_key'] is string else arg_dict['unique_key'] -%}
    {%- set compared = compared_columns(arg_dict['dest_columns']) -%}
    {%- set row_text = 'row(' ~ compared | join(', ') ~ ')::text' -%}
    {%- if incremental_watermark() -%}
    with fingerprints as (
        select {{ keys | join(', ') }}, md5(string_agg({{ row_text }}, E'\n' order by {{ row_text }})) as fingerprint
        from {{ source }}
        group by {{ keys | join(', ') }}
        union all
        select {{ keys | join(', ') }}, md5(string_agg({{ row_text }}, E'\n' order by {{ row_text }}))
        from {{ target }}
        where ({{ keys | join(', ') }}) in (select {{ keys | join(', ') }} from {{ source }})
        group by {{ keys | join(', ') }}
    ),

    unchanged as (
        select {{ keys | join(', ') }}
        from fingerprints
        group by {{ keys | join(', ') }}
        having count(*) = 2 and count(distinct fingerprint) = 1
    )

    delete from {{ source }} as s
    using unchanged as u
    where {% for k in keys %}s.{{ k }} = u.{{ k }}{{ ' and ' if not loop.last }}{% endfor %};
    {%- endif %}
    {{ get_delete_insert_merge_sql(
        target, source, arg_dict['unique_key'], arg_dict['dest_columns'], arg_dict['incremental_predicates']
    ) }}
{% endmacro %}

{#- The relation that keeps the rows a model replaced (`<model>__replaced`, beside it). -#}
{% macro replaced_rows_relation(relation) %}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__replaced'})) }}
{% endmacro %}

{#- Before changed_rows replaces a model's rows, the rows it replaces are copied to <model>__replaced with the
    build's instant (replaced_at), and a marker row (its key null) records that the build at that instant logged
    every row it replaced. A model that aggregates this one reads its changes since its own watermark from both
    (macro changed_versions): the new rows, and, per key, the first row replaced since, the one it had counted.
    Rows older than var replaced_rows_days are dropped; a reader whose watermark is older rebuilds whole. -#}
{% macro log_replaced_rows(target, source, key, dest_columns) %}
    {{ replaced_rows_log(target, dest_columns | map(attribute='name') | list) }}
    insert into {{ replaced_rows_relation(target) }}
    select t.*, now()
    from {{ target }} as t
    where t.{{ key }} in (select {{ key }} from {{ source }});
    insert into {{ replaced_rows_relation(target) }} (replaced_at) values (now());
    delete from {{ replaced_rows_relation(target) }}
    where replaced_at < now() - interval '{{ var("replaced_rows_days") }} days';
{% endmacro %}

{#- A post-hook of a model with `log_replaced_rows`: when it was built whole (its first build, a full refresh: no
    row is older than the build) its log starts there, with a marker row at the build's instant. -#}
{% macro start_replaced_rows_log() %}
    {{ replaced_rows_log(this, adapter.get_columns_in_relation(this) | map(attribute='name') | list) }}
    insert into {{ replaced_rows_relation(this) }} (replaced_at)
    select now() where not exists (select 1 from {{ this }} where _loaded_at < now())
{% endmacro %}

{#- The log relation, created (or created again, when the model's columns changed) with the model's columns and
    replaced_at. -#}
{% macro replaced_rows_log(relation, names) %}
    {%- set log = replaced_rows_relation(relation) -%}
    {%- set existing = adapter.get_relation(database=log.database, schema=log.schema, identifier=log.identifier) -%}
    {%- if existing is not none -%}
        {%- set logged = adapter.get_columns_in_relation(existing) | map(attribute='name') | list -%}
        {%- if logged != names + ['replaced_at'] %}
    drop table {{ log }};
            {%- set existing = none -%}
        {%- endif -%}
    {%- endif -%}
    {%- if existing is none %}
    create table {{ log }} as select *, now() as replaced_at from {{ relation }} with no data;
    create index on {{ log }} (replaced_at);
    create index on {{ log }} ({{ config.get('unique_key') }}, replaced_at);
    {%- endif %}
{% endmacro %}

{#- The watermark of a model kept up to date from another's changes (the rows of `relation` built since, and
    those it replaced since, macro log_replaced_rows): incremental_watermark, or None (build whole) when the log
    cannot tell every change since: it has no build logged at or before the watermark (new, or pruned since), or
    every row of `relation` was built since (a full refresh does not log what it replaces). -#}
{% macro changes_watermark(relation, key) %}
    {%- set wm = incremental_watermark(uses_settings=true) -%}
    {%- if not wm -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set log = replaced_rows_relation(relation) -%}
    {%- if adapter.get_relation(database=log.database, schema=log.schema, identifier=log.identifier) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set row = run_query(
        "select exists (select 1 from " ~ log ~ " where " ~ key ~ " is null and replaced_at <= " ~ wm ~ "), "
        ~ "(select min(_loaded_at) from " ~ relation ~ ") <= " ~ wm
    ).rows[0] -%}
    {{ return(wm if row[0] and row[1] else none) }}
{% endmacro %}

{#- The rows of `relation` that changed since `wm`, signed: +1 the row as it is now (built since), -1 the row as
    it was at `wm` (the first one replaced since, per key); `columns` of each. Summed with their sign, they turn
    an aggregate built at `wm` into the aggregate of now. Without `wm` (a build of every row): every row, +1. -#}
{% macro changed_versions(relation, key, columns, wm) %}
    select 1 as sign, {{ columns | join(', ') }}
    from {{ relation }}
    {%- if wm %}
    where _loaded_at > {{ wm }}
    union all
    select -1 as sign, {{ columns | join(', ') }}
    from (
        select distinct on ({{ key }}) *
        from {{ replaced_rows_relation(relation) }}
        where {{ key }} is not null and replaced_at > {{ wm }}
        order by {{ key }}, replaced_at
    ) as replaced
    {%- endif %}
{% endmacro %}

{#- The pre-hook of a model kept from `relation`'s changes (changes_watermark). A build of every row while the
    table exists (a setting changed, or the changes since cannot be told) starts from an empty table: the whole
    aggregate, added to it or inserted, is the aggregate. A model rebuilt by groups (`group_columns` of `relation`,
    `this_columns` here, never null) has the groups its changed rows are in, now or before, emptied first, so a
    group left with no row is not left stale; its build writes the others again. -#}
{% macro clear_for_changes(relation, key, group_columns=[], this_columns=[]) %}
    {%- if is_incremental() -%}
        {%- set wm = changes_watermark(relation, key) -%}
        {%- if not wm %}
    delete from {{ this }}
        {%- elif group_columns %}
    with changed as ({{ changed_versions(relation, key, group_columns, wm) }})
    delete from {{ this }}
    where ({{ this_columns | join(', ') }}) in (select {{ group_columns | join(', ') }} from changed)
        {%- endif -%}
    {%- endif -%}
{% endmacro %}

{#- Incremental strategy `additive` (aggregates whose measures are sums and counts): the temporary relation holds
    each group's signed change; it is added to the group's row, a new group is inserted, and a group whose
    `count_column` (config `additive_count`) falls to 0 has no row left behind it and is deleted. Groups whose
    change is zero in every measure are left alone. Keys are matched with `=`, so that the groups are joined by
    hash; a key that can be null is listed in config `additive_nullable_keys` and matched null-safely on top. -#}
{% macro get_incremental_additive_sql(arg_dict) %}
    {%- set target, source, keys = arg_dict['target_relation'], arg_dict['temp_relation'], arg_dict['unique_key'] -%}
    {%- set keys = [keys] if keys is string else keys -%}
    {%- set count_column = config.require('additive_count') -%}
    {%- set measures = [] -%}
    {%- for column in arg_dict['dest_columns'] if column.name not in keys and not column.name.startswith('_') -%}
        {%- do measures.append(column.name) -%}
    {%- endfor -%}
    {%- set nullable = config.get('additive_nullable_keys', []) -%}
    {%- set same_group -%}
        {%- for k in keys -%}
            t.{{ k }} {{ 'is not distinct from' if k in nullable else '=' }} s.{{ k }}{{ ' and ' if not loop.last }}
        {%- endfor -%}
    {%- endset -%}
    delete from {{ source }} where {% for m in measures %}{{ m }} = 0{{ ' and ' if not loop.last }}{% endfor %};
    update {{ target }} as t
    set {% for m in measures %}{{ m }} = t.{{ m }} + s.{{ m }}, {% endfor %}_loaded_at = s._loaded_at
    from {{ source }} as s
    where {{ same_group }};
    insert into {{ target }} ({{ arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') }})
    select {{ arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') }}
    from {{ source }} as s
    where not exists (select 1 from {{ target }} as t where {{ same_group }});
    delete from {{ target }} as t
    using {{ source }} as s
    where {{ same_group }} and t.{{ count_column }} = 0
{% endmacro %}
