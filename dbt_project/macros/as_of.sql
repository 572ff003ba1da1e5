{#- The instant the marts are "as of": BOXOFFICE_AS_OF (an ISO timestamp) when set, else now().
    Pinning it makes "today", "this week" and the 24 h / 7 d / 30 d windows reproducible. -#}
{% macro as_of_ts() -%}
    {%- set pinned = env_var('BOXOFFICE_AS_OF', '') -%}
    {%- if pinned -%} cast('{{ pinned }}' as timestamptz) {%- else -%} now() {%- endif -%}
{%- endmacro %}

{#- The as-of date in the reporting time zone. -#}
{% macro as_of_date() -%}
    {{ reporting_date(as_of_ts()) }}
{%- endmacro %}

{#- The start of the local day/week/month containing a timestamp, as a date. -#}
{% macro reporting_period(grain, column) -%}
    cast(date_trunc('{{ grain }}', {{ column }} at time zone '{{ var("reporting_timezone") }}') as date)
{%- endmacro %}
