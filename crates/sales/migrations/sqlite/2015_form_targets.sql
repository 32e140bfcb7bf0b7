-- What a form's posts become: leads (the intake, as before) or service tickets (the service
-- desk's web form). Fixed once a form is made.
ALTER TABLE forms ADD COLUMN target TEXT NOT NULL DEFAULT 'leads' CHECK (target IN ('leads', 'tickets'));
