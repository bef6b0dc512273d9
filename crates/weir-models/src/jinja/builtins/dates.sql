{#- Date arithmetic. `datepart` is a bare SQL date part: day, week, month, ... -#}
{% macro current_timestamp() %}{{ return(adapter.dispatch('current_timestamp', 'dbt')()) }}{% endmacro %}
{% macro default__current_timestamp() %}current_timestamp{% endmacro %}
{% macro postgres__current_timestamp() %}now(){% endmacro %}

{% macro dateadd(datepart, interval, from_date_or_timestamp) %}
  {{- return(adapter.dispatch('dateadd', 'dbt')(datepart, interval, from_date_or_timestamp)) -}}
{% endmacro %}
{% macro default__dateadd(datepart, interval, from_date_or_timestamp) -%}
  {{ from_date_or_timestamp }} + ((interval '1 {{ datepart }}') * ({{ interval }}))
{%- endmacro %}
{% macro duckdb__dateadd(datepart, interval, from_date_or_timestamp) -%}
  date_add({{ from_date_or_timestamp }}, interval ({{ interval }}) {{ datepart }})
{%- endmacro %}

{% macro datediff(first_date, second_date, datepart) %}
  {{- return(adapter.dispatch('datediff', 'dbt')(first_date, second_date, datepart)) -}}
{% endmacro %}
{% macro default__datediff(first_date, second_date, datepart) -%}
  date_diff('{{ datepart }}', ({{ first_date }})::timestamp, ({{ second_date }})::timestamp)
{%- endmacro %}
{#- PostgreSQL has no date_diff: count whole parts from the difference of the two values. -#}
{% macro postgres__datediff(first_date, second_date, datepart) -%}
  {%- set a = '(' ~ first_date ~ ')' -%}
  {%- set b = '(' ~ second_date ~ ')' -%}
  {%- if datepart == 'year' -%}
    (date_part('year', ({{ b }})::date) - date_part('year', ({{ a }})::date))
  {%- elif datepart == 'quarter' -%}
    ((date_part('year', ({{ b }})::date) - date_part('year', ({{ a }})::date)) * 4 + date_part('quarter', ({{ b }})::date) - date_part('quarter', ({{ a }})::date))
  {%- elif datepart == 'month' -%}
    ((date_part('year', ({{ b }})::date) - date_part('year', ({{ a }})::date)) * 12 + date_part('month', ({{ b }})::date) - date_part('month', ({{ a }})::date))
  {%- elif datepart == 'day' -%}
    (({{ b }})::date - ({{ a }})::date)
  {%- elif datepart == 'week' -%}
    floor((({{ b }})::date - ({{ a }})::date) / 7)
  {%- elif datepart == 'hour' -%}
    floor(extract(epoch from (({{ b }})::timestamp - ({{ a }})::timestamp)) / 3600)
  {%- elif datepart == 'minute' -%}
    floor(extract(epoch from (({{ b }})::timestamp - ({{ a }})::timestamp)) / 60)
  {%- elif datepart == 'second' -%}
    floor(extract(epoch from (({{ b }})::timestamp - ({{ a }})::timestamp)))
  {%- else -%}
    {{ exceptions.raise_compiler_error("unsupported datepart for datediff on postgres: " ~ datepart) }}
  {%- endif -%}
{%- endmacro %}

{% macro date_trunc(datepart, date) %}{{ return(adapter.dispatch('date_trunc', 'dbt')(datepart, date)) }}{% endmacro %}
{% macro default__date_trunc(datepart, date) %}date_trunc('{{ datepart }}', {{ date }}){% endmacro %}

{% macro last_day(date, datepart) %}{{ return(adapter.dispatch('last_day', 'dbt')(date, datepart)) }}{% endmacro %}
{% macro default__last_day(date, datepart) -%}
  cast({{ dbt.dateadd('day', '-1', dbt.dateadd(datepart, '1', dbt.date_trunc(datepart, date))) }} as date)
{%- endmacro %}

{% macro get_intervals_between(start_date, end_date, datepart) -%}
  {{ return(adapter.dispatch('get_intervals_between', 'dbt')(start_date, end_date, datepart)) }}
{%- endmacro %}
{% macro default__get_intervals_between(start_date, end_date, datepart) -%}
  {%- call statement('get_intervals_between', fetch_result=True) -%}
    select {{ dbt.datediff(start_date, end_date, datepart) }}
  {%- endcall -%}
  {%- set result = load_result('get_intervals_between') -%}
  {%- if result and result['data'] -%}
    {{ return(result['data'][0][0]) }}
  {%- else -%}
    {{ return(1) }}
  {%- endif -%}
{%- endmacro %}

{#- A series 1..upper_bound without a generate_series function: cross joins of {0, 1}, one per
    binary digit. -#}
{% macro get_powers_of_two(upper_bound) -%}
  {{ return(adapter.dispatch('get_powers_of_two', 'dbt')(upper_bound)) }}
{%- endmacro %}
{% macro default__get_powers_of_two(upper_bound) -%}
  {%- if upper_bound <= 0 -%}
    {{ exceptions.raise_compiler_error("get_powers_of_two: upper bound must be positive, got " ~ upper_bound) }}
  {%- endif -%}
  {%- set ns = namespace(bits=1) -%}
  {#- The condition sits in the body: minijinja evaluates a loop's `if` filter over all items
      before the body runs, so it would not see ns.bits change. -#}
  {%- for _ in range(1, 64) -%}
    {%- if 2 ** ns.bits < upper_bound -%}{%- set ns.bits = ns.bits + 1 -%}{%- endif -%}
  {%- endfor -%}
  {{ return(ns.bits) }}
{%- endmacro %}

{% macro generate_series(upper_bound) -%}
  {{ return(adapter.dispatch('generate_series', 'dbt')(upper_bound)) }}
{%- endmacro %}
{% macro default__generate_series(upper_bound) -%}
  {%- set bits = dbt.get_powers_of_two(upper_bound) -%}
  with bit as (select 0 as b union all select 1),
  numbers as (
    select 1{% for i in range(bits) %} + b{{ i }}.b * {{ 2 ** i }}{% endfor %} as generated_number
    from {% for i in range(bits) %}bit as b{{ i }}{% if not loop.last %} cross join {% endif %}{% endfor %}
  )
  select generated_number from numbers where generated_number <= {{ upper_bound }}
{%- endmacro %}

{% macro date_spine(datepart, start_date, end_date) -%}
  {{ return(adapter.dispatch('date_spine', 'dbt')(datepart, start_date, end_date)) }}
{%- endmacro %}
{% macro default__date_spine(datepart, start_date, end_date) -%}
  {%- set periods = dbt.get_intervals_between(start_date, end_date, datepart) -%}
  select * from (
    select {{ dbt.dateadd(datepart, 'generated_number - 1', start_date) }} as date_{{ datepart }}
    from ({{ dbt.generate_series(periods) }}) as series
  ) as spine
  where date_{{ datepart }} < {{ end_date }}
{%- endmacro %}
