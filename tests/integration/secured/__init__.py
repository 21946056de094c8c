"""The broker secured for real: SASL_SSL, SCRAM users and per-service ACLs."""
