-- 0004: call insights (issue 8): calls and what processing makes of them (recording,
-- transcript, segments, insights, scorecard, CRM pushes), per-tenant scorecard templates,
-- and the jobs outbox.
--
-- Every table is tenant-owned with the tenant_isolation policy of migration 0001 (ENABLEd and
-- FORCEd). Children point at their call through (tenant_id, call_id), so a row can only
-- belong to a call of its own tenant (foreign-key checks bypass row-level security).
--
-- Outbox: a call is accepted by inserting its row and its `process_call` job in one
-- transaction; a relay moves unrelayed jobs (enqueued_at IS NULL) to the queue and stamps
-- them. A crash between the two leaves the job to be relayed again, never lost.

CREATE TABLE calls (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- The sender's id of the call (`call_id` of a webhook): idempotency key per tenant.
    provider_call_id text NOT NULL CHECK (length(provider_call_id) BETWEEN 1 AND 200),
    -- Who told us: a PBX webhook, our bridge, our turn-api.
    source           text NOT NULL DEFAULT 'voip'
                     CHECK (source IN ('voip', 'bridge', 'turn_api')),
    -- Numbers as sent, or their hashes when HASH_PHONE_NUMBERS is on; '' when unknown.
    from_number      text NOT NULL DEFAULT '' CHECK (length(from_number) <= 128),
    to_number        text NOT NULL DEFAULT '' CHECK (length(to_number) <= 128),
    -- The sender's agent id (a PBX extension, a CRM user): text, not one of our agents.
    agent_ref        text NOT NULL DEFAULT '' CHECK (length(agent_ref) <= 200),
    started_at       timestamptz,
    ended_at         timestamptz,
    duration_sec     integer CHECK (duration_sec >= 0),
    -- What the caller agreed to. NULL: the sender did not say (the tenant's policy decides);
    -- false: never processed (status skipped_no_consent).
    consent          boolean,
    status           text NOT NULL DEFAULT 'received' CHECK (status IN (
                         'received', 'downloading', 'transcribing', 'analyzing', 'scoring',
                         'processed', 'failed', 'skipped_no_consent')),
    -- Per pipeline stage: {"download": {"status": "done", "ms": 120, "attempts": 1}, …}.
    stage_status     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(stage_status) = 'object'),
    -- The last failure, for a person (never a secret).
    error            text,
    recording_url    text CHECK (recording_url ~ '^https?://'),
    -- Whatever else the sender attached (provider, account ids …).
    meta             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(meta) = 'object'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at),
    UNIQUE (tenant_id, provider_call_id),
    -- Target of the children's composite foreign keys.
    UNIQUE (tenant_id, id)
);
-- The calls list: newest first, filtered by status or agent.
CREATE INDEX calls_tenant_created ON calls (tenant_id, created_at DESC);
CREATE INDEX calls_tenant_started ON calls (tenant_id, started_at DESC);
CREATE INDEX calls_tenant_status ON calls (tenant_id, status);
CREATE INDEX calls_tenant_agent ON calls (tenant_id, agent_ref);

-- The stored audio of a call (one per call; reprocessing replaces it).
CREATE TABLE recordings (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    call_id      uuid NOT NULL,
    -- Where the storage backend keeps it (disk path or object key); NULL once retention
    -- deleted the media.
    storage_key  text CHECK (length(storage_key) BETWEEN 1 AND 1024),
    original_url text CHECK (original_url ~ '^https?://'),
    format       text NOT NULL DEFAULT '' CHECK (format ~ '^[a-z0-9]{0,16}$'),
    content_type text NOT NULL DEFAULT '' CHECK (length(content_type) <= 100),
    sample_rate  integer CHECK (sample_rate > 0),
    channels     smallint CHECK (channels > 0),
    size_bytes   bigint CHECK (size_bytes >= 0),
    sha256       text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    duration_sec double precision CHECK (duration_sec >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    UNIQUE (call_id),
    FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX recordings_tenant ON recordings (tenant_id, created_at);

-- The transcript, by word and by speaker, searchable in Portuguese (pt_search_vector of
-- migration 0001; query with `search @@ pt_search_query($1)`).
CREATE TABLE transcripts (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    call_id      uuid NOT NULL,
    language     text NOT NULL DEFAULT 'pt-BR' CHECK (language ~ '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
    -- Which transcriber made it (deepgram, openai, channels …).
    provider     text NOT NULL DEFAULT '' CHECK (length(provider) <= 64),
    text         text NOT NULL DEFAULT '',
    -- [{"word", "start", "end", "speaker", "confidence"}, …]
    words        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(words) = 'array'),
    -- Utterances by speaker: [{"speaker", "start", "end", "text"}, …]
    diarization  jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(diarization) = 'array'),
    search       tsvector GENERATED ALWAYS AS (pt_search_vector('', text)) STORED,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (call_id),
    FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX transcripts_search ON transcripts USING gin (search);
CREATE INDEX transcripts_tenant ON transcripts (tenant_id, created_at);

-- Parts of the conversation: abertura, descoberta, apresentação, objeções, fechamento …
CREATE TABLE segments (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    call_id    uuid NOT NULL,
    ordinal    integer NOT NULL CHECK (ordinal >= 0),
    label      text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    start_sec  double precision NOT NULL CHECK (start_sec >= 0),
    end_sec    double precision NOT NULL,
    excerpt    text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (end_sec >= start_sec),
    UNIQUE (call_id, ordinal),
    FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX segments_tenant ON segments (tenant_id);

-- What the LLM made of the call (strict JSON, validated before it is stored).
CREATE TABLE insights (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    call_id        uuid NOT NULL,
    summary        text NOT NULL DEFAULT '',
    pain_points    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(pain_points) = 'array'),
    objections     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(objections) = 'array'),
    -- [{"title", "dueDate"}, …]
    next_actions   jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(next_actions) = 'array'),
    tags           text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 50),
    -- Which model and which prompt file version produced it.
    model          text NOT NULL DEFAULT '' CHECK (length(model) <= 100),
    prompt_version text NOT NULL DEFAULT '' CHECK (length(prompt_version) <= 100),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (call_id),
    FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
-- Filter the calls list by tag.
CREATE INDEX insights_tags ON insights USING gin (tags);
CREATE INDEX insights_tenant ON insights (tenant_id);

-- A tenant's scorecard templates: items with weights and what earns the points.
CREATE TABLE scorecard_templates (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Stable key (`diagnostico`), what scorecards name.
    key        text NOT NULL CHECK (key ~ '^[a-z0-9_-]{1,64}$'),
    name       text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    -- [{"item", "weight", "criteria"}, …]
    items      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(items) = 'array'),
    -- The template for calls that name none.
    is_default boolean NOT NULL DEFAULT false,
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key),
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX scorecard_templates_one_default ON scorecard_templates (tenant_id)
    WHERE is_default;

-- A call's score. template_key and items are a copy, so later template edits do not
-- rewrite past scores; template_id is only a link.
CREATE TABLE scorecards (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    call_id      uuid NOT NULL,
    template_id  uuid,
    template_key text NOT NULL CHECK (template_key ~ '^[a-z0-9_-]{1,64}$'),
    -- [{"item", "weight", "score", "reason"}, …]
    items        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(items) = 'array'),
    total_score  double precision NOT NULL DEFAULT 0,
    max_score    double precision CHECK (max_score >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (call_id),
    FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE,
    -- Only template_id is cleared when the template goes (PostgreSQL 15 column list).
    FOREIGN KEY (tenant_id, template_id) REFERENCES scorecard_templates (tenant_id, id)
        ON DELETE SET NULL (template_id)
);
CREATE INDEX scorecards_tenant ON scorecards (tenant_id);

-- Every push to a CRM and its outcome (ENABLE_CRM_PUSH, or POST /calls/:id/push-crm).
CREATE TABLE crm_events (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    call_id     uuid NOT NULL,
    provider    text NOT NULL CHECK (provider ~ '^[a-z0-9_]{1,32}$'),
    -- person_lookup, note, activity …
    action      text NOT NULL CHECK (action ~ '^[a-z0-9_]{1,32}$'),
    status      text NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
    -- The CRM's id of what was made (note id, activity id, person id).
    external_id text CHECK (length(external_id) <= 200),
    -- Non-secret details (what was matched, the CRM's status code).
    detail      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object'),
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX crm_events_call ON crm_events (tenant_id, call_id, created_at);

-- The jobs outbox. call_id NULL: a tenant-wide job (retention, say).
CREATE TABLE jobs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    call_id     uuid,
    kind        text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
    payload     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- When the relay put it on the queue; NULL until then.
    enqueued_at timestamptz,
    FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
-- What the relay reads: the unrelayed jobs, oldest first.
CREATE INDEX jobs_pending ON jobs (tenant_id, created_at) WHERE enqueued_at IS NULL;
CREATE INDEX jobs_call ON jobs (tenant_id, call_id);

CREATE TRIGGER calls_touch BEFORE UPDATE ON calls
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER transcripts_touch BEFORE UPDATE ON transcripts
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER insights_touch BEFORE UPDATE ON insights
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER scorecard_templates_touch BEFORE UPDATE ON scorecard_templates
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER scorecards_touch BEFORE UPDATE ON scorecards
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['calls', 'recordings', 'transcripts', 'segments', 'insights',
                             'scorecard_templates', 'scorecards', 'crm_events', 'jobs']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I'
                       ' USING (tenant_id = current_tenant_id())'
                       ' WITH CHECK (tenant_id = current_tenant_id())', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE
    ON calls, recordings, transcripts, segments, insights, scorecard_templates, scorecards,
       jobs TO voice_app;
-- CRM events are a record of what was sent: added, read, deleted only with their call.
GRANT SELECT, INSERT ON crm_events TO voice_app;

-- The relay visits only tenants with unrelayed jobs. The jobs table shows a transaction only
-- its own tenant's rows, so the list comes from a SECURITY DEFINER function owned by
-- voice_lookup (migration 0002), which may read just these two columns of every tenant.
GRANT SELECT (tenant_id, enqueued_at) ON jobs TO voice_lookup;
CREATE POLICY lookup ON jobs FOR SELECT TO voice_lookup USING (true);

CREATE FUNCTION jobs_pending_tenants() RETURNS TABLE (tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT
    AS $$ SELECT DISTINCT j.tenant_id FROM jobs j WHERE j.enqueued_at IS NULL ORDER BY 1 $$;

ALTER FUNCTION jobs_pending_tenants() OWNER TO voice_lookup;
REVOKE ALL ON FUNCTION jobs_pending_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobs_pending_tenants() TO voice_app;
