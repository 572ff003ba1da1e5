{#- A salted SHA-256 of a personal value (email, IP): joinable across marts, not reversible without
    the salt. The salt comes from PII_SALT; set your own in production. -#}
{% macro pii_hash(column) -%}
    encode(sha256(convert_to('{{ env_var("PII_SALT", "boxoffice-demo-salt") }}' || lower(cast({{ column }} as text)), 'UTF8')), 'hex')
{%- endmacro %}
