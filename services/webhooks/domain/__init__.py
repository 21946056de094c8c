"""Webhooks' domain: subscriptions, deliveries and their retry schedule, the URL policy. Pure."""
