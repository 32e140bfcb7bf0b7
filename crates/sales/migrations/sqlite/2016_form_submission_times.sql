-- A form's posts by time: the per-minute flood check counts the form's last minute from here,
-- at most up to its limit, instead of walking every post of the hour.
CREATE INDEX form_submissions_at ON form_submissions (tenant_id, form_id, at);
