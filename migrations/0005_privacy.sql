-- 0005: LGPD rules per tenant (issue 8).
--
-- NULL means "the service's setting" (call-insights [privacy]): a tenant overrides only what
-- it sets.

ALTER TABLE tenants
    -- true: a call is processed only when its sender said consent = true; false: unless it
    -- said consent = false.
    ADD COLUMN require_consent boolean,
    -- Media and transcripts of calls older than this many days are deleted by the retention
    -- job.
    ADD COLUMN retention_days integer CHECK (retention_days BETWEEN 1 AND 36500);

-- What the retention job deleted, for the record (never the deleted content itself).
CREATE TABLE retention_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    call_id     uuid NOT NULL,
    -- What went: recording (media), transcript (with segments and insights).
    deleted     text[] NOT NULL,
    older_than  timestamptz NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX retention_log_tenant ON retention_log (tenant_id, deleted_at);
ALTER TABLE retention_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE retention_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON retention_log
    USING (tenant_id = current_tenant_id())
    WITH CHECK (tenant_id = current_tenant_id());
GRANT SELECT, INSERT ON retention_log TO voice_app;

-- tenant_lookup (migration 0002) returns whole tenant rows: again, with the new columns.
GRANT SELECT (require_consent, retention_days) ON tenants TO voice_lookup;
DROP FUNCTION tenant_lookup(text);
CREATE FUNCTION tenant_lookup(domain text)
    RETURNS TABLE (id uuid, domain_uuid uuid, domain_name text, timezone text, enabled boolean,
                   max_concurrent_calls integer, busy_transfer text, requests_per_minute integer,
                   require_consent boolean, retention_days integer)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT
    AS $$
BEGIN
    -- Two statements, not one with OR: a name is never cast to uuid.
    IF domain ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN QUERY
        SELECT t.id, t.domain_uuid, t.domain_name, t.timezone, t.enabled,
               t.max_concurrent_calls, t.busy_transfer, t.requests_per_minute,
               t.require_consent, t.retention_days
        FROM tenants t WHERE t.domain_uuid = domain::uuid;
    ELSE
        RETURN QUERY
        SELECT t.id, t.domain_uuid, t.domain_name, t.timezone, t.enabled,
               t.max_concurrent_calls, t.busy_transfer, t.requests_per_minute,
               t.require_consent, t.retention_days
        FROM tenants t WHERE lower(t.domain_name) = lower(domain);
    END IF;
END
$$;
ALTER FUNCTION tenant_lookup(text) OWNER TO voice_lookup;
REVOKE ALL ON FUNCTION tenant_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_lookup(text) TO voice_app;

-- GET /calls sorts a tenant's calls newest first by when they happened.
CREATE INDEX calls_tenant_recent ON calls (tenant_id, (COALESCE(started_at, created_at)) DESC, id DESC);
