-- Partner agencies (youth office, welfare organisations) take "family" matters beyond marriage
-- and separation; the taxonomy names it so referrals and consultations share one code.
INSERT INTO topics (code, label_de, label_en, built_in) VALUES
    ('family', 'Familie und Erziehung', 'Family and parenting', true)
ON CONFLICT (code) DO NOTHING;
