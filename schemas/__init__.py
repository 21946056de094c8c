"""The Leadflow event contract: CloudEvents envelope, event data models, topics.

Services know each other only through this package and the records on Kafka.
"""
