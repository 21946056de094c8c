"""One lead per person: the normalised email is the identity, the lead id derives from it.

Deriving the id (uuid5) rather than looking it up means any worker can tell which
partition a capture belongs to before any state is read, so two concurrent
captures of one person meet on one partition, where they are applied in turn.
"""

from uuid import UUID, uuid5


def normalise_email(email: str) -> str:
    """Lower-case, trimmed, without a '+tag' in the local part."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    return f"{local}@{domain}"


def email_domain(email: str) -> str:
    return normalise_email(email).rpartition("@")[2]


def lead_id_for(email: str, namespace: UUID) -> str:
    return str(uuid5(namespace, normalise_email(email)))
