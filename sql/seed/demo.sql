-- Demo reference data: obviously fake.  Agency names say FAKE; every telephone
-- number is in Ofcom's range reserved for TV and radio drama (020 7946 0000-0999,
-- never a real subscriber); case numbers are 100000x with their Luhn check digit.
-- Officers get their demo PIN from `switchboard demo` (it needs the pepper), so
-- no hash is written here.  Idempotent: running it again changes nothing.

INSERT INTO agency (code, name) VALUES
    ('42', 'Demo Constabulary (FAKE)'),
    ('77', 'Example Border Agency (FAKE)')
ON CONFLICT (code) DO NOTHING;

INSERT INTO agency_line (e164, agency_id, label)
SELECT v.e164, a.agency_id, v.label
FROM (VALUES ('+442079460100', '42', 'FAKE control room'),
             ('+442079460101', '42', 'FAKE duty desk'),
             ('+442079460700', '77', 'FAKE port office')) AS v(e164, code, label)
JOIN agency a ON a.code = v.code
ON CONFLICT (e164) DO NOTHING;

INSERT INTO officer (agency_id, number, name)
SELECT a.agency_id, v.number, v.name
FROM (VALUES ('42', '1001', 'Constable Demo One (FAKE)'),
             ('42', '1002', 'Sergeant Demo Two (FAKE)'),
             ('42', '1003', 'Constable Lockout Demo (FAKE)'),
             ('77', '5001', 'Officer Example (FAKE)')) AS v(code, number, name)
JOIN agency a ON a.code = v.code
ON CONFLICT (agency_id, number) DO NOTHING;

INSERT INTO case_record (case_number, priority, office) VALUES
    ('10000016', 'high', 'FAKE national desk'),
    ('10000024', 'normal', 'FAKE national desk'),
    ('10000032', 'low', 'FAKE north office')
ON CONFLICT (case_number) DO NOTHING;

-- Throttle state of the demo's own callers (drama-range numbers and withheld), so
-- each demo run starts alike.
DELETE FROM ani_throttle WHERE ani = 'withheld' OR ani LIKE '+44207946%';
