-- flexledger's database roles (docs/design/audit.md). Idempotent; run by `flexledger admin db-roles`
-- (and by `flexledger dev up` / the test fixtures) connected as the OWNER role, `pg_user`, which owns
-- the database, the service schemas and their event tables. Parameters, set by the caller beforehand:
--   SET flexledger.app_role = 'flexledger_app';       -- the role the three services connect as
--   SET flexledger.app_password = '...';
--   SET flexledger.schemas = 'intake,eligibility,payments,access';
--   SET flexledger.key_ring_id = '<uuid>';              -- the access store's API key ring stream
--
-- What each role may do:
--   owner (pg_user)      creates schemas and event tables (eventsourcing's <schema>_events and
--                        <schema>_tracking); the only role that could UPDATE or DELETE an event: use it
--                        for provisioning and migrations only. It is a member of the app role, so it
--                        can also read and maintain the read models the services create.
--   flexledger_app       LOGIN; on each service schema USAGE and CREATE (its read models: it creates
--                        and owns them, they are rebuilt from the events); on <schema>_events SELECT and
--                        INSERT only — no UPDATE, DELETE or TRUNCATE, and not the owner, so it cannot
--                        grant itself more; on <schema>_tracking SELECT, INSERT, UPDATE (single-row
--                        tracking overwrites a consumer position in place; positions are not evidence).
--   flexledger_auditor   NOLOGIN, to grant to auditors' logins: SELECT on everything in the schemas.
DO $roles$
DECLARE
    app text := current_setting('flexledger.app_role');
    app_password text := current_setting('flexledger.app_password');
    owner_role text := current_user;
    auditor text := 'flexledger_auditor';
    s text;
    t record;
BEGIN
    IF app = owner_role THEN
        RAISE EXCEPTION 'the runtime role % must not be the owner role', app;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = app) THEN
        EXECUTE format('CREATE ROLE %I', app);
    END IF;
    -- No CREATEROLE: a role that may grant roles could grant itself the owner's.
    EXECUTE format('ALTER ROLE %I WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD %L', app, app_password);
    IF NOT pg_has_role(owner_role, app, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', app, owner_role);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = auditor) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', auditor);
    END IF;

    FOREACH s IN ARRAY string_to_array(current_setting('flexledger.schemas'), ',') LOOP
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', s);
        EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', s, app);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, auditor);
        -- Tables the owner creates later (a new event table) are INSERT-only for the app by default.
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT, INSERT ON TABLES TO %I',
                       owner_role, s, app);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO %I',
                       owner_role, s, app);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
                       owner_role, s, auditor);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
                       app, s, auditor);
        FOR t IN
            SELECT c.relname, pg_get_userbyid(c.relowner) AS owner
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = s AND c.relkind IN ('r', 'p')
        LOOP
            IF t.relname ~ '_(events|snapshots|tracking)$' THEN
                -- Event tables belong to the owner, whoever created them.
                IF t.owner <> owner_role THEN
                    EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', s, t.relname, owner_role);
                END IF;
                EXECUTE format('REVOKE ALL ON %I.%I FROM %I', s, t.relname, app);
                IF t.relname ~ '_tracking$' THEN
                    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I.%I TO %I', s, t.relname, app);
                ELSE
                    EXECUTE format('GRANT SELECT, INSERT ON %I.%I TO %I', s, t.relname, app);
                END IF;
            ELSIF t.owner = owner_role THEN
                -- A read model created by the owner (a service run as the owner): the app maintains it.
                EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', s, t.relname, app);
            END IF;
            EXECUTE format('GRANT SELECT ON %I.%I TO %I', s, t.relname, auditor);
        END LOOP;
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', s, app);
    END LOOP;

    -- The access store: the app INSERTs read-audit events, but a change of the API key ring (its one
    -- stream, flexledger.key_ring_id) only the owner may append (`flexledger keys`), so a compromised
    -- service cannot issue itself a key (docs/design/http-auth.md). The app role cannot drop, disable or
    -- replace the trigger or its function: both belong to the owner.
    IF to_regclass('access.access_events') IS NOT NULL THEN
        CREATE OR REPLACE FUNCTION access.access_key_ring_owner_only() RETURNS trigger
        LANGUAGE plpgsql AS $trigger$
        BEGIN
            IF NEW.originator_id = TG_ARGV[0]::uuid AND NOT pg_has_role(
                    current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
                RAISE EXCEPTION 'only the owner role may change the API key ring (flexledger keys)'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END
        $trigger$;
        DROP TRIGGER IF EXISTS access_key_ring_owner_only ON access.access_events;
        EXECUTE format('CREATE TRIGGER access_key_ring_owner_only BEFORE INSERT ON access.access_events '
                       'FOR EACH ROW EXECUTE FUNCTION access.access_key_ring_owner_only(%L)',
                       current_setting('flexledger.key_ring_id'));
    END IF;
END
$roles$;
