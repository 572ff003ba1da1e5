{#- Integer cents -> numeric(18,2) in major units: exact, never float. -#}
{% macro cents_to_major(column) -%}
    cast({{ column }} / 100.0 as numeric(18, 2))
{%- endmacro %}

{#- A Mollie amount object {"value": "10.00", "currency": "EUR"} -> numeric. -#}
{% macro mollie_amount(json_expr, scale=2) -%}
    cast(({{ json_expr }})->>'value' as numeric(18, {{ scale }}))
{%- endmacro %}

{#- A UTC timestamp -> the local date in the reporting time zone. -#}
{% macro reporting_date(column) -%}
    cast(({{ column }} at time zone '{{ var("reporting_timezone") }}') as date)
{%- endmacro %}

{#- A UTC timestamp -> the wall-clock time in the reporting time zone (timestamp without zone). -#}
{% macro reporting_ts(column) -%}
    cast(({{ column }} at time zone '{{ var("reporting_timezone") }}') as timestamp)
{%- endmacro %}
