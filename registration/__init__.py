"""sonomap registration stage: WSI cancer annotation + needle-tract ultrasound -> pixel label."""
