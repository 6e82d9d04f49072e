-- The job a user would otherwise run in DuckDB on the same logs: read every
-- line, normalize the three formats of the sample day, classify with a CASE,
-- write a per-record parquet file and per-minute rollups with latency
-- percentiles. benches/compare.sh runs it against `faultline analyze`.
-- LOGS and OUT are replaced by the harness.
SET threads = 2;

CREATE TEMP TABLE raw AS
SELECT * FROM read_json('LOGS/*.jsonl',
    format = 'newline_delimited',
    ignore_errors = true,
    columns = {
        ts: 'VARCHAR', service: 'VARCHAR', provider: 'VARCHAR', model: 'VARCHAR',
        api_base: 'VARCHAR', key_id: 'VARCHAR', request_id: 'VARCHAR', attempt: 'INTEGER',
        status_code: 'INTEGER', latency_ms: 'DOUBLE', prompt_tokens: 'INTEGER',
        completion_tokens: 'INTEGER', error: 'JSON', request: 'JSON', response: 'JSON',
        id: 'VARCHAR', custom_llm_provider: 'VARCHAR', status: 'VARCHAR',
        startTime: 'DOUBLE', endTime: 'DOUBLE', error_str: 'VARCHAR',
        error_information: 'JSON', metadata: 'JSON'
    });

CREATE TEMP TABLE records AS
WITH n AS (
    SELECT
        coalesce(try_cast(ts AS TIMESTAMPTZ), to_timestamp(startTime)) AS ts,
        coalesce(service, metadata->>'user_api_key_alias') AS service,
        coalesce(provider, custom_llm_provider,
            CASE WHEN request->>'url' LIKE '%anthropic%' THEN 'anthropic'
                 WHEN request->>'url' LIKE '%openai%' THEN 'openai'
                 WHEN request->>'url' LIKE '%deepseek%' THEN 'deepseek'
                 WHEN request->>'url' LIKE '%googleapis%' THEN 'gemini' END) AS provider,
        coalesce(model, request->'body'->>'model') AS model,
        coalesce(request_id, id, response->'headers'->>'x-request-id',
                 response->'headers'->>'request-id') AS request_id,
        coalesce(key_id, metadata->>'user_api_key_hash') AS key_id,
        coalesce(status_code, try_cast(response->>'status' AS INTEGER),
                 try_cast(error_information->>'error_code' AS INTEGER),
                 CASE WHEN status = 'success' THEN 200 END) AS http_status,
        coalesce(error->>'type', response->'body'->'error'->>'type',
                 error_information->>'error_class') AS error_type,
        coalesce(error->>'message', response->'body'->'error'->>'message', error_str,
                 error->>'$') AS error_message,
        coalesce(latency_ms, (endTime - startTime) * 1000) AS latency_ms,
        coalesce(prompt_tokens, try_cast(response->'body'->'usage'->>'prompt_tokens' AS INTEGER),
                 try_cast(response->'body'->'usage'->>'input_tokens' AS INTEGER)) AS prompt_tokens,
        coalesce(completion_tokens,
                 try_cast(response->'body'->'usage'->>'completion_tokens' AS INTEGER),
                 try_cast(response->'body'->'usage'->>'output_tokens' AS INTEGER)) AS completion_tokens,
        attempt,
        json_array_length(response->'body'->'choices') = 0 AS empty_response
    FROM raw
)
SELECT *,
    CASE
        WHEN http_status BETWEEN 200 AND 299 AND coalesce(empty_response, false) THEN 'empty_response'
        WHEN http_status BETWEEN 200 AND 299 THEN 'ok'
        WHEN http_status = 429 AND (error_message ILIKE '%quota%' OR error_type ILIKE '%quota%') THEN 'quota'
        WHEN http_status = 429 THEN 'rate_limit'
        WHEN http_status = 401 THEN 'auth'
        WHEN http_status = 403 THEN 'permission'
        WHEN http_status = 400 THEN 'bad_request'
        WHEN http_status = 529 OR error_message ILIKE '%overloaded%' THEN 'overloaded'
        WHEN http_status = 503 THEN 'unavailable'
        WHEN http_status >= 500 THEN 'server_error'
        WHEN error_message ILIKE '%timeout%' OR error_message ILIKE '%timed out%' THEN 'timeout'
        ELSE 'unknown'
    END AS status_class
FROM n;

COPY records TO 'OUT/records.parquet' (FORMAT parquet, COMPRESSION zstd);

COPY (
    SELECT time_bucket(INTERVAL 1 minute, ts) AS window_start, provider, model, service,
           status_class, count(*) AS requests,
           count(*) FILTER (WHERE status_class <> 'ok') AS errors,
           quantile_cont(latency_ms, 0.5) AS latency_p50_ms,
           quantile_cont(latency_ms, 0.95) AS latency_p95_ms,
           quantile_cont(latency_ms, 0.99) AS latency_p99_ms,
           sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens
    FROM records
    GROUP BY ALL
    ORDER BY ALL
) TO 'OUT/rollups.parquet' (FORMAT parquet, COMPRESSION zstd);
