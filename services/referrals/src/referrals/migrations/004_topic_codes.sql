-- One topic taxonomy for the network: the codes cases keeps (GET /topics on cases).
UPDATE agencies SET topics = ARRAY(
    SELECT DISTINCT CASE code
        WHEN 'language_course' THEN 'language_integration_course'
        WHEN 'integration_course' THEN 'language_integration_course'
        WHEN 'illness_disability' THEN 'health_disability'
        WHEN 'internship' THEN 'vocational_training'
        ELSE code
    END
    FROM unnest(topics) AS code
);
