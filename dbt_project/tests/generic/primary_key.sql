{#- The relation has a primary key on exactly these columns, which makes them unique and not null: a catalog
    lookup, where a unique test would group every row. Raw's tables get theirs from the extract. -#}
{% test primary_key(model, columns) %}
with declared as (
    select array_agg(a.attname::text order by a.attname) as key_columns
    from pg_constraint as c
    inner join pg_attribute as a on a.attrelid = c.conrelid and a.attnum = any(c.conkey)
    where c.conrelid = to_regclass('{{ model }}') and c.contype = 'p'
)

select '{{ model }}' as relation, key_columns as primary_key, '{{ columns | sort | join(",") }}' as expected
from declared
where key_columns is distinct from array[{% for c in columns | sort %}'{{ c }}'{{ ", " if not loop.last }}{% endfor %}]::text[]
{% endtest %}
