"""Leadflow's services. Each subpackage is one deployable service; `runtime` is
what they all run on. Services never import each other (see .importlinter)."""
