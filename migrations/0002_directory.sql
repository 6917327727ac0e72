-- 0002: what call routing, limits, the directory cache and the admin API need.
--
-- * agents: the numbers that reach them, a default agent per tenant, and further settings
--   in the services' own TOML shapes;
-- * tenants: a concurrent-call cap with what an extra caller hears, and a request rate;
-- * NOTIFY on every configuration change, so caches drop a tenant's entry at once;
-- * two narrow lookups that must work before a tenant is known (a domain, an API key),
--   as SECURITY DEFINER functions owned by a role that may read just those columns.

-- Dialled numbers (FusionPBX destinations, extensions, or any word the dialplan passes)
-- checked one by one; an array cannot be checked element-wise by a plain CHECK.
CREATE FUNCTION valid_numbers(numbers text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(bool_and(n ~ '^[0-9A-Za-z*#+_.-]{1,64}$'), true)
          FROM unnest(numbers) AS n $$;

ALTER TABLE agents
    -- Numbers that reach this agent (the dialled destination, or `agent` in the stream URL).
    ADD COLUMN numbers text[] NOT NULL DEFAULT '{}'
        CHECK (valid_numbers(numbers) AND cardinality(numbers) <= 100),
    -- The agent for a call that names no number this tenant knows.
    ADD COLUMN is_default boolean NOT NULL DEFAULT false,
    -- Further overrides, in the shape of the service's `[agent]` TOML section (failover,
    -- prompts, cascaded chains …). Unknown keys are refused by the service that reads them.
    ADD COLUMN settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object');
CREATE UNIQUE INDEX agents_one_default ON agents (tenant_id) WHERE is_default;
CREATE INDEX agents_numbers ON agents USING gin (numbers);

ALTER TABLE tenants
    -- Calls the bridge runs at once for this tenant; NULL: no cap.
    ADD COLUMN max_concurrent_calls integer CHECK (max_concurrent_calls >= 0),
    -- Where a call over the cap is transferred (an extension in the tenant's context);
    -- empty: the busy message is spoken and the call ends.
    ADD COLUMN busy_transfer text NOT NULL DEFAULT ''
        CHECK (busy_transfer ~ '^[0-9A-Za-z*#+_.@-]{0,64}$'),
    -- API requests per minute for this tenant (turn-api, admin API); NULL: the service's
    -- default.
    ADD COLUMN requests_per_minute integer CHECK (requests_per_minute > 0);

-- Cache invalidation: every change to what a call is configured from names its tenant on
-- channel `voice_config`. PostgreSQL sends notifications at commit and folds duplicates
-- within a transaction, so a bulk edit is one message per tenant.
CREATE FUNCTION notify_config_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    tenant uuid;
BEGIN
    IF TG_TABLE_NAME = 'tenants' THEN
        tenant := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
    ELSE
        tenant := CASE WHEN TG_OP = 'DELETE' THEN OLD.tenant_id ELSE NEW.tenant_id END;
    END IF;
    PERFORM pg_notify('voice_config', tenant::text);
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'agents', 'provider_instances']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I'
                       ' FOR EACH ROW EXECUTE FUNCTION notify_config_change()',
                       t || '_notify', t);
    END LOOP;
END
$$;
-- Keys: not when a key is merely used (last_used_at moves about once a minute per key).
CREATE TRIGGER api_keys_notify
    AFTER INSERT OR DELETE OR UPDATE OF tenant_id, role, key_hash, expires_at, revoked_at
    ON api_keys FOR EACH ROW EXECUTE FUNCTION notify_config_change();

-- The lookup role: no login, no BYPASSRLS; row-level security lets it read tenants and API
-- keys of every tenant, and nothing else. Only the two functions below run as it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'voice_lookup') THEN
        BEGIN
            CREATE ROLE voice_lookup NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- ALTER FUNCTION … OWNER TO needs membership.
    IF NOT pg_has_role(current_user, 'voice_lookup', 'MEMBER') THEN
        EXECUTE format('GRANT voice_lookup TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO voice_lookup', current_schema());
END
$$;

GRANT SELECT (id, domain_uuid, domain_name, timezone, enabled, max_concurrent_calls,
              busy_transfer, requests_per_minute) ON tenants TO voice_lookup;
GRANT SELECT (id, tenant_id, role, key_hash, expires_at, revoked_at) ON api_keys TO voice_lookup;
CREATE POLICY lookup ON tenants FOR SELECT TO voice_lookup USING (true);
CREATE POLICY lookup ON api_keys FOR SELECT TO voice_lookup USING (true);

-- A tenant by its FusionPBX domain: the uuid, or the name (any case).
CREATE FUNCTION tenant_lookup(domain text)
    RETURNS TABLE (id uuid, domain_uuid uuid, domain_name text, timezone text, enabled boolean,
                   max_concurrent_calls integer, busy_transfer text, requests_per_minute integer)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT
    AS $$
BEGIN
    -- Two statements, not one with OR: a name is never cast to uuid.
    IF domain ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN QUERY
        SELECT t.id, t.domain_uuid, t.domain_name, t.timezone, t.enabled,
               t.max_concurrent_calls, t.busy_transfer, t.requests_per_minute
        FROM tenants t WHERE t.domain_uuid = domain::uuid;
    ELSE
        RETURN QUERY
        SELECT t.id, t.domain_uuid, t.domain_name, t.timezone, t.enabled,
               t.max_concurrent_calls, t.busy_transfer, t.requests_per_minute
        FROM tenants t WHERE lower(t.domain_name) = lower(domain);
    END IF;
END
$$;

-- An API key by the SHA-256 of what was presented: its tenant and role, if it is valid now.
CREATE FUNCTION api_key_lookup(hash bytea)
    RETURNS TABLE (key_id uuid, tenant_id uuid, role text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT
    AS $$
    SELECT k.id, k.tenant_id, k.role
    FROM api_keys k
    WHERE k.key_hash = hash AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > now())
    $$;

ALTER FUNCTION tenant_lookup(text) OWNER TO voice_lookup;
ALTER FUNCTION api_key_lookup(bytea) OWNER TO voice_lookup;
REVOKE ALL ON FUNCTION tenant_lookup(text), api_key_lookup(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_lookup(text), api_key_lookup(bytea) TO voice_app;
