"""The marketing domain: campaigns, leads, qualification. Pure Python: no Kafka, no HTTP."""
