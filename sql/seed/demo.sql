-- Demo reference data: obviously fake.  Agency names say FAKE; every telephone
-- number is in the NANP range reserved for fiction (555-0100 to 555-0199 in any
-- area code, never a real subscriber; here Nashville's 615); case numbers are 100000x with their Luhn check digit.
-- Officers get their demo PIN from `switchboard demo` (it needs the pepper), so
-- no hash is written here.  Idempotent: running it again changes nothing.

INSERT INTO agency (code, name) VALUES
    ('42', 'Demo County Sheriff''s Office (FAKE)'),
    ('77', 'Example State Highway Patrol (FAKE)')
ON CONFLICT (code) DO NOTHING;

INSERT INTO agency_line (e164, agency_id, label)
SELECT v.e164, a.agency_id, v.label
FROM (VALUES ('+16155550100', '42', 'FAKE dispatch'),
             ('+16155550101', '42', 'FAKE records desk'),
             ('+16155550170', '77', 'FAKE district office')) AS v(e164, code, label)
JOIN agency a ON a.code = v.code
ON CONFLICT (e164) DO NOTHING;

INSERT INTO officer (agency_id, number, name)
SELECT a.agency_id, v.number, v.name
FROM (VALUES ('42', '1001', 'Deputy Demo One (FAKE)'),
             ('42', '1002', 'Sergeant Demo Two (FAKE)'),
             ('42', '1003', 'Deputy Lockout Demo (FAKE)'),
             ('77', '5001', 'Trooper Example (FAKE)')) AS v(code, number, name)
JOIN agency a ON a.code = v.code
ON CONFLICT (agency_id, number) DO NOTHING;

INSERT INTO case_record (case_number, priority, office) VALUES
    ('10000016', 'high', 'FAKE national desk'),
    ('10000024', 'normal', 'FAKE national desk'),
    ('10000032', 'low', 'FAKE north office')
ON CONFLICT (case_number) DO NOTHING;

-- Throttle state of the demo's own callers (fiction-range numbers and withheld), so
-- each demo run starts alike.
DELETE FROM ani_throttle WHERE ani = 'withheld' OR ani LIKE '+161555501__';
