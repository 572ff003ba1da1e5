{#- A salted SHA-256 of a personal value (email, IP): joinable across marts, not reversible without
    the salt. The salt (PII_SALT) is read from a table only the warehouse's own user may read, never
    written into the SQL: a view definition or a compiled file holds no secret. -#}
{% macro pii_hash(column) -%}
    encode(sha256(convert_to((select value from {{ source('boxoffice', 'build_settings') }} where name = 'pii_salt') || lower(cast({{ column }} as text)), 'UTF8')), 'hex')
{%- endmacro %}
