-- Every import of a template increments its revision; readers that cache parsed templates check it.
ALTER TABLE profile_templates ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
