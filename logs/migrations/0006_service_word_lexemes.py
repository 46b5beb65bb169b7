"""On PostgreSQL, every word of an entry is also indexed together with its service: the `search`
tsvector gains `svc:<service>/<word>` for each of its words (besides `svc:<service>`, `lvl:<level>`).

Why: "a word within one service" was the intersection of two posting lists in every day's GIN
index ('timeout' & 'svc:beat': 12,000 and 40,000 entries a day, ~2.6 ms a partition at 20M
entries, ~80 ms to learn that beat never logged a timeout). With the pair as one lexeme it is one
GIN lookup, ~0.02 ms a partition, whatever the two frequencies (logs.selectors.text_filter adds the
pair terms when every word of the search is required). No text can produce these lexemes: the parser
splits at ':', and a service name has no '/'.

The column is generated, so PostgreSQL 15 has to drop and re-add it: every partition is rewritten
and its GIN index rebuilt (a seed of 20M entries took ~20 min with it on a loaded box): run it in a quiet hour.
"""

from django.db import migrations

# PL/pgSQL, not SQL: a SQL function with a FROM is not inlined and ran ~2x slower per row (100,000
# rows: 3.5 s against 7.8 s, on the loaded box). The old expression alone took ~1.3 s.
FUNCTION = """
CREATE OR REPLACE FUNCTION logs_search_vector(event text, message text, service text, level integer)
RETURNS tsvector LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    words tsvector := to_tsvector('simple'::regconfig, coalesce(event, '') || ' ' || left(message, 8000));
BEGIN
    RETURN words || array_to_tsvector(
        ARRAY['svc:' || service, 'lvl:' || level::text]
        || ARRAY(SELECT 'svc:' || service || '/' || word FROM unnest(tsvector_to_array(words)) AS word)
    );
END
$$
"""

# The AND of the `svc:<service>/<word>` lexemes of a search's words, for a search whose every word is
# required (no OR, no -negation); the service's own lexeme when the search has no word.
SERVICE_WORDS = """
CREATE OR REPLACE FUNCTION logs_service_words(query text, service text)
RETURNS tsquery LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        string_agg(quote_literal('svc:' || service || '/' || word), ' & '),
        quote_literal('svc:' || service)
    )::tsquery
    FROM unnest(tsvector_to_array(to_tsvector('simple'::regconfig, query))) AS word
$$
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    execute = schema_editor.execute
    execute(FUNCTION)
    execute(SERVICE_WORDS)
    execute("ALTER TABLE logs_logentry DROP COLUMN search")  # drops logs_search_gin with it
    execute(
        "ALTER TABLE logs_logentry ADD COLUMN search tsvector "
        "GENERATED ALWAYS AS (logs_search_vector(event, message, service, level)) STORED"
    )
    execute("CREATE INDEX logs_search_gin ON logs_logentry USING gin (search)")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    execute = schema_editor.execute
    execute("ALTER TABLE logs_logentry DROP COLUMN search")
    execute(
        "ALTER TABLE logs_logentry ADD COLUMN search tsvector GENERATED ALWAYS AS ("
        "to_tsvector('simple'::regconfig, coalesce(event, '') || ' ' || left(message, 8000)) "
        "|| array_to_tsvector(ARRAY['svc:' || service, 'lvl:' || level::text])) STORED"
    )
    execute("CREATE INDEX logs_search_gin ON logs_logentry USING gin (search)")
    execute("DROP FUNCTION logs_service_words(text, text)")
    execute("DROP FUNCTION logs_search_vector(text, text, text, integer)")


class Migration(migrations.Migration):
    atomic = True
    dependencies = [("logs", "0005_service_time_index")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
