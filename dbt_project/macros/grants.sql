{#- The roles the marts are granted to (dbt `grants`): analytics reads `marts`, support reads `support`.
    Created when missing, so a fresh warehouse works; set var create_roles: false where the dbt user may
    not create roles and the DBA has made them. -#}
{% macro create_reader_roles() %}
    {% if var('create_roles', true) and execute %}
        {% for role in [env_var('ANALYTICS_ROLE', 'analytics'), env_var('SUPPORT_ROLE', 'support')] %}
            {% do run_query("do $$ begin if not exists (select from pg_roles where rolname = '" ~ role ~ "') then create role " ~ adapter.quote(role) ~ " nologin; end if; end $$") %}
        {% endfor %}
    {% endif %}
{% endmacro %}

{#- Readers need USAGE on a schema besides SELECT on its tables. -#}
{% macro grant_schema_usage(schema, role) %}
    {% if execute %}
        {% do run_query("create schema if not exists " ~ adapter.quote(schema)) %}
        {% do run_query("grant usage on schema " ~ adapter.quote(schema) ~ " to " ~ adapter.quote(role)) %}
    {% endif %}
{% endmacro %}
