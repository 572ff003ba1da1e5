{#- The column has a unique index of its own (the model's `indexes` config), which keeps it unique on every
    insert: a catalog lookup, where a unique test would group every row of the table again. -#}
{% test unique_index(model, column_name) %}
select '{{ model }}' as relation, '{{ column_name }}' as key_column, 'no unique index on the column' as reason
where not exists (
    select 1
    from pg_index as i
    inner join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
    where i.indrelid = to_regclass('{{ model }}')
        and i.indisunique
        and i.indpred is null
        and i.indnkeyatts = 1
        and a.attname = '{{ column_name }}'
)
{% endtest %}
