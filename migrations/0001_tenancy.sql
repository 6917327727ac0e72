-- 0001: tenants, agents, provider instances, knowledge base, API keys, event log, daily metrics.
--
-- Applied by voice_core::db::migrate inside one transaction. Never edit this file once it has
-- been applied anywhere: the runner records its SHA-256 and refuses a changed file. Changes go
-- in a new file (0002_….sql).
--
-- Isolation: every tenant-owned table has row-level security ENABLEd and FORCEd (so even the
-- table owner is subject to it; only superusers and BYPASSRLS roles are not). The services run
-- their queries as `voice_app` (SET LOCAL ROLE, no BYPASSRLS) with `app.tenant_id` set for the
-- transaction; a row is visible or writable only when its tenant_id equals that setting.

-- Accent folding for Portuguese full-text search: the built-in `portuguese` configuration keeps
-- accents ("horário" -> 'horári', "horario" -> 'horari'), so words typed without them would
-- miss. `unaccent` ships with PostgreSQL's contrib and is a trusted extension.
CREATE EXTENSION IF NOT EXISTS unaccent;

-- The application role. Roles are shared by the whole cluster, so several databases (or
-- services migrating at once) may race to create it: whoever loses takes the existing one.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'voice_app') THEN
        BEGIN
            CREATE ROLE voice_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles
               WHERE rolname = 'voice_app' AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'role voice_app is SUPERUSER or BYPASSRLS: row-level security would not apply to it';
    END IF;
    -- The services switch to voice_app with SET LOCAL ROLE, which needs membership.
    IF NOT pg_has_role(current_user, 'voice_app', 'MEMBER') THEN
        EXECUTE format('GRANT voice_app TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO voice_app', current_schema());
END
$$;

-- The tenant of the current transaction, NULL when none is set. NULLIF because a custom
-- setting that was once set in a session reads '' (not NULL) after its transaction ended,
-- and ''::uuid would be an error instead of "no rows".
CREATE FUNCTION current_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE FUNCTION touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- Tenants: one per FusionPBX domain.
CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    domain_uuid uuid NOT NULL UNIQUE,
    domain_name text NOT NULL CHECK (domain_name ~ '^[^[:space:]/]{1,253}$'),
    -- The tenant's day for daily metrics. Checked by converting the current time with it,
    -- which raises "time zone ... not recognized" for a bad name.
    timezone    text NOT NULL DEFAULT 'America/Sao_Paulo'
                CHECK ((now() AT TIME ZONE timezone) IS NOT NULL),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- FreeSWITCH hands us the domain as dialled; domain names are case-insensitive.
CREATE UNIQUE INDEX tenants_domain_name_key ON tenants (lower(domain_name));

-- Agents: who answers a call, and how.
CREATE TABLE agents (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    mode       text NOT NULL DEFAULT 'realtime'
               CHECK (mode IN ('realtime', 'cascaded', 'turn')),
    prompt     text NOT NULL DEFAULT '',
    language   text NOT NULL DEFAULT 'pt-BR',
    voice      text NOT NULL DEFAULT '',
    greeting   text NOT NULL DEFAULT '',
    -- Structured settings, in the shapes of the bridge's TOML sections of the same names.
    vad        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(vad) = 'object'),
    turn       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(turn) = 'object'),
    barge_in   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(barge_in) = 'object'),
    tools      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tools) = 'array'),
    handoff    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(handoff) = 'object'),
    -- Playout dialect (file / stream …) and its timing.
    playout    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(playout) = 'object'),
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    -- Target of the composite foreign keys below: a row can only point at an agent of its
    -- own tenant (foreign-key checks bypass row-level security, so `agent_id` alone would
    -- let tenant A reference tenant B's agent).
    UNIQUE (tenant_id, id)
);

-- Provider instances: a tenant's accounts with AI providers. Several of one kind are allowed
-- (two OpenAI keys, say); the fallback chain tries enabled ones by ascending priority.
CREATE TABLE provider_instances (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN (
                    'openai_realtime', 'gemini_live', 'elevenlabs_agent', 'deepgram', 'openai',
                    'groq', 'anthropic', 'ollama', 'elevenlabs', 'piper')),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Non-secret settings: base URL, model, voice, timeouts.
    settings    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    -- Ciphertext of the secrets (API key, token); never plaintext. NULL: none needed.
    credentials bytea,
    priority    integer NOT NULL DEFAULT 100 CHECK (priority >= 0),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX provider_instances_chain ON provider_instances (tenant_id, priority) WHERE enabled;

-- Knowledge search in Portuguese. Two sets of lexemes are indexed and queried together:
--   * `portuguese` stems, then accents folded: the stemmer sees the accents its suffix rules
--     need ("informação" and "informações" both give 'inform'), and the folding lets
--     "horario" meet "horário" ('horari');
--   * `portuguese_unaccent`, which folds and then stems: words written without accents
--     ("informacoes") stem alike in documents and queries.
CREATE TEXT SEARCH CONFIGURATION portuguese_unaccent (COPY = pg_catalog.portuguese);
ALTER TEXT SEARCH CONFIGURATION portuguese_unaccent
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, portuguese_stem;

-- unaccent() is STABLE (its rules could be reloaded); pinning it lets a generated column use
-- it. The functions carry this migration's search_path, so a dump restored with another
-- still finds the dictionary and the configuration.
CREATE FUNCTION pt_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path FROM CURRENT
    AS $$ SELECT unaccent('unaccent', $1) $$;

-- A document's lexemes: both sets, merged position by position (merging the text forms;
-- `tsvector || tsvector` would shift the second set's positions).
CREATE FUNCTION pt_search_vector(title text, body text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path FROM CURRENT
    AS $$
    SELECT (pt_fold(stemmed::text) || ' ' || folded::text)::tsvector
    FROM (SELECT setweight(to_tsvector('portuguese', coalesce(title, '')), 'A')
                 || setweight(to_tsvector('portuguese', coalesce(body, '')), 'B') AS stemmed,
                 setweight(to_tsvector('portuguese_unaccent', coalesce(title, '')), 'A')
                 || setweight(to_tsvector('portuguese_unaccent', coalesce(body, '')), 'B') AS folded
         ) v
    $$;

-- A search box's text (websearch syntax: "quoted phrases", OR, -excluded) as a query that
-- matches either set.
CREATE FUNCTION pt_search_query(query text) RETURNS tsquery
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path FROM CURRENT
    AS $$
    SELECT CASE WHEN numnode(stemmed) = 0 THEN folded
                ELSE folded || pt_fold(stemmed::text)::tsquery END
    FROM (SELECT websearch_to_tsquery('portuguese', query) AS stemmed,
                 websearch_to_tsquery('portuguese_unaccent', query) AS folded) q
    $$;

-- Knowledge base: what the `lookup_knowledge` tool searches. Query with
-- `WHERE search @@ pt_search_query($1) ORDER BY ts_rank(search, pt_search_query($1)) DESC`.
CREATE TABLE knowledge_documents (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- NULL: every agent of the tenant may use it.
    agent_id   uuid,
    title      text NOT NULL DEFAULT '',
    body       text NOT NULL,
    source     text NOT NULL DEFAULT '',
    search     tsvector GENERATED ALWAYS AS (pt_search_vector(title, body)) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX knowledge_documents_search ON knowledge_documents USING gin (search);
CREATE INDEX knowledge_documents_tenant ON knowledge_documents (tenant_id, agent_id);

-- API keys: only a SHA-256 of the key is stored, plus a short prefix to tell keys apart.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    role         text NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent', 'viewer')),
    prefix       text NOT NULL CHECK (prefix ~ '^[A-Za-z0-9_-]{4,16}$'),
    key_hash     bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- Event log: call.started, turn.completed, handoff, call.ended, … Append-only: the
-- application role may only insert and read, and a trigger refuses updates and deletes from
-- anyone (except the cascade when a tenant is deleted). `agent_id` has no foreign key (the
-- log outlives agents, and a key's ON DELETE action would have to rewrite the log); a
-- trigger checks it names an agent of the row's tenant when inserted.
CREATE TABLE events (
    id        bigserial PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id  uuid,
    call_id   text,
    kind      text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
    at        timestamptz NOT NULL DEFAULT now(),
    data      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object')
);
CREATE INDEX events_tenant_at ON events (tenant_id, at);
CREATE INDEX events_tenant_call ON events (tenant_id, call_id) WHERE call_id IS NOT NULL;

CREATE FUNCTION events_check_agent() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.agent_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM agents WHERE tenant_id = NEW.tenant_id AND id = NEW.agent_id
    ) THEN
        RAISE EXCEPTION 'events: agent % is not an agent of tenant %', NEW.agent_id, NEW.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER events_check_agent BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_check_agent();

CREATE FUNCTION events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    -- Deleting a tenant cascades to its events: the foreign key's action runs as a trigger,
    -- so this one fires nested inside it.
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- Daily metrics per tenant and agent, aggregated from the event log (upsert on
-- daily_metrics_key). `day` is in the tenant's time zone; agent_id NULL collects events not
-- tied to an agent (NULLS NOT DISTINCT makes that one row per day, not one per upsert).
CREATE TABLE daily_metrics (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id   uuid,
    day        date NOT NULL,
    calls      bigint NOT NULL DEFAULT 0 CHECK (calls >= 0),
    turns      bigint NOT NULL DEFAULT 0 CHECK (turns >= 0),
    handoffs   bigint NOT NULL DEFAULT 0 CHECK (handoffs >= 0),
    -- Summed call durations.
    seconds    double precision NOT NULL DEFAULT 0 CHECK (seconds >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT daily_metrics_key UNIQUE NULLS NOT DISTINCT (tenant_id, agent_id, day)
);

CREATE TRIGGER tenants_touch BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER agents_touch BEFORE UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER provider_instances_touch BEFORE UPDATE ON provider_instances
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER knowledge_documents_touch BEFORE UPDATE ON knowledge_documents
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER daily_metrics_touch BEFORE UPDATE ON daily_metrics
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Row-level security: the tenants table shows a transaction only its own tenant's row; every
-- other table only rows of that tenant.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = current_tenant_id())
    WITH CHECK (id = current_tenant_id());

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['agents', 'provider_instances', 'knowledge_documents', 'api_keys',
                             'events', 'daily_metrics']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I'
                       ' USING (tenant_id = current_tenant_id())'
                       ' WITH CHECK (tenant_id = current_tenant_id())', t);
    END LOOP;
END
$$;

-- What the services may do as voice_app. Tenants are created and deleted on the admin path.
GRANT SELECT, UPDATE (timezone) ON tenants TO voice_app;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON agents, provider_instances, knowledge_documents, api_keys, daily_metrics TO voice_app;
GRANT SELECT, INSERT ON events TO voice_app;
GRANT USAGE ON SEQUENCE events_id_seq TO voice_app;
