"""What every Leadflow service runs on: settings, the Faust worker with its
FastAPI app, health and metrics, CloudEvents in and out, dead letters, commands
routed to the worker that owns a key, topic set-up and logging.

Free of domain logic: nothing here knows about leads, deals or orders.
"""
