-- 0003: what aggregating the event log into daily_metrics, and reading them, needs
-- (voice_core::tenancy::metrics).

-- The seconds a `call.ended` event adds to its day: `data.seconds` as a JSON number or a
-- numeric string, 0 for anything else (missing, text, negative, absurdly large), so one
-- bad event can neither fail the aggregation nor break daily_metrics' CHECK (seconds >= 0).
-- A plain expression, so the planner inlines it.
CREATE FUNCTION event_seconds(data jsonb) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN jsonb_typeof(data -> 'seconds') IN ('number', 'string')
                     AND btrim(data ->> 'seconds') ~ '^[0-9]{1,9}(\.[0-9]+)?$'
                THEN btrim(data ->> 'seconds')::double precision
                ELSE 0 END
    $$;

-- The dashboard reads a tenant's days, all agents at once; daily_metrics_key leads with
-- agent_id after tenant_id.
CREATE INDEX daily_metrics_tenant_day ON daily_metrics (tenant_id, day);

-- The periodic aggregator visits every tenant. The tenants table shows a transaction only
-- its own tenant's row, so the list comes from a SECURITY DEFINER function owned by
-- voice_lookup (which migration 0002 lets read every tenant), returning ids and zones only.
CREATE FUNCTION metrics_tenants() RETURNS TABLE (id uuid, timezone text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT
    AS $$ SELECT t.id, t.timezone FROM tenants t ORDER BY t.id $$;

ALTER FUNCTION metrics_tenants() OWNER TO voice_lookup;
REVOKE ALL ON FUNCTION metrics_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metrics_tenants() TO voice_app;
